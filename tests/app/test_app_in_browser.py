"""`cellbench app` as a user meets it: started on a free local port, driven in headless Chromium."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from browser import browser_page
from PIL import Image

from cellbench.formats import labelme

pytest.importorskip("gradio", reason="Gradio is not installed (the app extra)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app(tiny_results, tmp_path):
    port = _free_port()
    log = open(tmp_path / "app.log", "w")  # noqa: SIM115  (closed below)
    process = subprocess.Popen([sys.executable, "-m", "cellbench", "app", "--results", str(tiny_results), "--port",
                                str(port), "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.close()
            pytest.fail(f"the app did not start:\n{(tmp_path / 'app.log').read_text()[-3000:]}")
        time.sleep(0.5)
    yield url, process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    log.close()


def test_drop_images_get_cells_and_a_labelme_file(app, demo_raw, tmp_path):
    url, process = app
    grey = np.asarray(Image.open(demo_raw / "demo_02.png").convert("L"), dtype=np.uint16) * 257
    Image.fromarray(grey).save(tmp_path / "deep.tif")  # 16-bit
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with browser_page() as page:
        page.goto(url)
        dropped = [str(demo_raw / "demo_00.png"), str(tmp_path / "deep.tif"), str(tmp_path / "broken.png")]
        page.locator("input[type=file]").first.set_input_files(dropped)
        page.locator("td.filename[aria-label='broken.png']").wait_for(timeout=30_000)  # all three uploaded
        page.get_by_role("button", name="Segment").click()
        page.wait_for_selector("#downloads a", state="attached", timeout=120_000)
        summary = page.locator("#summary").inner_text()
        assert "demo_00.png" in summary and "deep.tif" in summary and "cell objects" in summary
        assert re.search(r"Not analysed: broken\.png: .+", summary)  # refused with its reason, the others done
        rows = page.locator("#cells table tbody tr")
        assert rows.count() >= 1 and "demo_00" in page.locator("#cells").inner_text()
        links = {Path(a.get_attribute("href")).name: a.get_attribute("href")
                 for a in page.locator("#downloads a").all()}
        assert {"demo_00_classes.png", "demo_00_instances.png", "demo_00.json", "demo_00_cells.csv",
                "deep.json"} <= set(links)
        document = page.request.get(links["demo_00.json"]).body()
        folder = tmp_path / "downloaded"
        folder.mkdir()
        (folder / "demo_00.json").write_bytes(document)
        shutil.copy(demo_raw / "demo_00.png", folder)  # LabelMe opens it beside its image
        annotation, problems = labelme.read_annotation(folder / "demo_00.json", ["background", "cytoplasm", "nucleus"])
        assert problems == [] and annotation.shape_hw == (128, 128) and json.loads(document)["shapes"]
        page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
        assert page.problems == []
    work = Path(re.search(r"file=(/.*?cellbench-app\.[^/]+)", links["demo_00.json"]).group(1))
    assert work.is_dir()
    process.send_signal(signal.SIGTERM)
    process.wait(30)
    assert not work.exists()  # nothing kept after the app stops
    if os.environ.get("CELLBENCH_SCREENSHOTS"):
        shutil.copy(tmp_path / "app.png", os.environ["CELLBENCH_SCREENSHOTS"])
