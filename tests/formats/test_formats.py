"""The format registry: one record per format, and the schema's data.format lists exactly them."""

from cellbench import config as configuration
from cellbench.formats import FORMATS, get


def test_registry_and_schema_list_the_same_formats():
    schema = configuration.load_schema()["properties"]["data"]["properties"]["format"]
    assert list(FORMATS) == schema["enum"]


def test_each_format_is_a_record_with_files_description_and_reader():
    for name, record in FORMATS.items():
        assert record.name == name and record.description and callable(record.read)
        assert get(name) is record
