"""The Gradio page of `cellbench app`: choose an architecture, drop images, get the overlay, the
cells, a summary and the files (class map, instance map, LabelMe JSON, cells CSV).

Local only unless asked (127.0.0.1); everything a session writes lives in one temporary folder that
is removed when the app stops, unless --keep names a folder to copy the results to.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import threading
import uuid
from pathlib import Path

import pandas as pd

from cellbench.app.session import MAX_PIXELS, ModelCache, analyse_uploads, choices
from cellbench.errors import ConfigError, InputError
from cellbench.fsutil import glob_escape, is_running, owner
from cellbench.inference.ensemble import DEFAULT_WINDOWS, Windows

log = logging.getLogger(__name__)

UPLOAD_TYPES = [".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"]


def _gradio():
    try:
        import gradio
    except ImportError:
        raise ConfigError("the app needs Gradio: pip install 'cellbench[app]'") from None
    return gradio


def build(results: Path, work: Path, device: str = "auto", windows: Windows = DEFAULT_WINDOWS,
          max_pixels: int = MAX_PIXELS, keep: Path | None = None):
    """The page (a gradio.Blocks) for the trained models of ``results``; ``work``: where this app's
    files go (the caller removes it)."""
    gr = _gradio()
    offered = choices(results)
    by_label = {c.label: c for c in offered}
    cache = ModelCache(device)

    def run(label: str, uploads: list[str] | None):
        if not uploads:
            return [], "Drop one or more images first.", pd.DataFrame(), []
        try:
            batch = analyse_uploads([Path(u) for u in uploads], by_label[label], cache, work / uuid.uuid4().hex,
                                    windows, max_pixels, keep)
        except (InputError, ConfigError) as err:  # a damaged model file: said on the page, the app goes on
            raise gr.Error(str(err)) from None
        return batch.overlays, batch.text, batch.cells, [str(p) for p in batch.files]

    with gr.Blocks(title="cellbench", delete_cache=(600, 3600)) as page:
        gr.Markdown("# cellbench\nSegment cells with the benchmark's trained models. Images stay on this computer.")
        with gr.Row():
            arch = gr.Dropdown([c.label for c in offered], value=offered[0].label, label="Architecture "
                               "(best cross-validated first)")
            uploads = gr.File(file_count="multiple", file_types=UPLOAD_TYPES, type="filepath",
                              label=f"Images (PNG, JPEG, TIFF incl. 16-bit, BMP; up to {max_pixels / 1e6:.0f} MP)",
                              elem_id="uploads")
        button = gr.Button("Segment", variant="primary")
        summary = gr.Markdown(elem_id="summary")
        gallery = gr.Gallery(label="Overlay: classes in colour (see the summary), object outlines in white",
                             columns=2, height=560, object_fit="contain", preview=False, elem_id="overlays",
                             format="png")  # lossless, and no side limit (WebP stops at 16,383 pixels)
        cells = gr.Dataframe(label="Cells (areas in pixels; uncertainty: mean normalised entropy, 0 = certain)",
                             elem_id="cells", interactive=False)
        downloads = gr.File(label="Downloads: class map PNG, instance map PNG, LabelMe JSON, cells CSV, QuPath "
                            "GeoJSON, ImageJ ROI sets",
                            file_count="multiple", elem_id="downloads", interactive=False)
        button.click(run, [arch, uploads], [gallery, summary, cells, downloads])
    return page


WORK_PREFIX = "cellbench-app."  # + host.pid. : the app's temporary folder (uploads and results)


def remove_stale_work_folders(root: Path | None = None) -> list[Path]:
    """Remove the temporary folders of apps of this host that were killed (their process is gone);
    those of running apps, and every other folder, stay."""
    root = Path(root or tempfile.gettempdir())
    host = owner().rsplit(".", 1)[0]
    removed = []
    for folder in root.glob(f"{WORK_PREFIX}{glob_escape(host)}.*"):
        pid = folder.name[len(WORK_PREFIX) + len(host) + 1:].split(".")[0]
        if folder.is_dir() and not folder.is_symlink() and pid.isdigit() and not is_running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(results: Path, host: str = "127.0.0.1", port: int | None = None, device: str = "auto",
          windows: Windows = DEFAULT_WINDOWS, max_pixels: int = MAX_PIXELS, keep: Path | None = None,
          block: bool = True):
    """Start the app (until interrupted when ``block``). Returns (page, work folder) when not blocking."""
    if block and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as Ctrl+C does: the files go too
    remove_stale_work_folders()
    work = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{owner()}."))
    os.environ["GRADIO_TEMP_DIR"] = str(work / "uploads")  # Gradio's copies of the uploads, removed with ours
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        page = build(results, work / "results", device, windows, max_pixels, keep)
        page.queue(default_concurrency_limit=1)  # one image at a time: memory stays bounded
        page.launch(server_name=host, server_port=port, share=False, inbrowser=False, prevent_thread_lock=not block,
                    max_file_size="1gb", allowed_paths=[str(work)], show_error=True, quiet=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if not block:
        return page, work
    shutil.rmtree(work, ignore_errors=True)  # launch returned: the app was stopped
    return None
