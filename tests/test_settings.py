"""Typed, frozen settings per step: exactly what was sent, the schema the one source of keys and defaults."""

import dataclasses

import pytest

from cellbench import config as configuration
from cellbench.errors import ConfigError
from cellbench.settings import Settings


def test_settings_classes_list_exactly_the_schema_keys_and_define_no_defaults():
    schema = configuration.load_schema()["properties"]
    assert [f.name for f in dataclasses.fields(Settings)] == list(schema)
    for name, section in Settings.nested.items():
        fields = dataclasses.fields(section)
        assert [f.name for f in fields] == list(schema[name]["properties"]), name
        assert all(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING for f in fields)


def test_complete_settings_read_like_the_config():
    full = configuration.complete({"train": {"epochs": 7}})
    settings = Settings.build(full)
    assert settings.train.epochs == 7 and settings["train"]["epochs"] == 7
    assert settings.sent() == full and dict(settings.evaluate) == full["evaluate"]
    assert settings == Settings.build(configuration.complete({"train": {"epochs": 7}}))


def test_reading_a_setting_that_was_not_sent_fails_with_its_name():
    settings = Settings.build({"dataset": "x", "train": {"epochs": 3}})
    assert settings.train.epochs == 3
    for read in (lambda: settings.train.resume_every_minutes, lambda: settings["train"]["resume_every_minutes"],
                 lambda: settings.results):
        with pytest.raises(ConfigError, match="was not sent to this step"):
            read()
    assert "epochs" in settings.train and "resume_every_minutes" not in settings.train
    assert "train" in settings and "split" not in settings
    assert settings.sent() == {"dataset": "x", "train": {"epochs": 3}}


def test_settings_are_frozen_and_keep_their_own_copies():
    values = {"classes": ["background", "cell"], "evaluate": {"regions": {"r": ["cell"]}}}
    settings = Settings.build(values)
    values["classes"].append("nucleus")
    assert settings.classes == ["background", "cell"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.classes = []
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.train.epochs = 2


def test_unknown_settings_are_refused():
    with pytest.raises(ConfigError, match="unknown setting in train: epochz"):
        Settings.build({"train": {"epochz": 1}})
