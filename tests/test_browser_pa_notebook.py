"""Browser test: JupyterLab on loopback, 02_pa_visualisation.ipynb in headless Debian Chromium (Playwright
pointed at /usr/bin/chromium; no browser download), run all cells, move the frame-pair slider, check
that the displayed picture changes, keep a screenshot.

The notebook copy runs on a small generated video in `small` mode, so the whole test takes well under a
minute on 2 cores. The server and its kernels are stopped in a `finally` (the whole process group).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest

from pan_lib.data.video import write_video

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"]
NOTEBOOK = "02_pa_visualisation.ipynb"
SCREENSHOT_KEEP_BYTES = 400_000  # a copy goes to results/browser/ when it is at most this big

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(420)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, log_path: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer within {timeout:.0f}s:\n{log_path.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (server + kernels), SIGKILL what is left after 20 s."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def _prepare_workdir(root: Path, repo_root: Path) -> Path:
    """A copy of the notebook with small-mode parameters and a generated video, plus Lab settings."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    frames = np.full((24, 64, 64, 3), 40, np.uint8)
    for i in range(24):
        frames[i, 20:44, 4 + 2 * i:24 + 2 * i] = (230, 190, 50)  # a square moving 2 px per frame
    video = write_video(root / "square.mp4", frames, codec="mpeg4")
    nb = load_notebook_node(str(repo_root / "notebooks" / NOTEBOOK))
    nb = parameterize_notebook(nb, {"video": str(video), "small": True, "progress": "off",
                                    "results_dir": str(root / "results"), "device": "cpu"})
    nbformat.write(nb, root / NOTEBOOK)
    # render every cell (no windowing), so selectors see the whole notebook
    settings = root / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    return root / NOTEBOOK


def _no_browser_reason() -> str:
    """Why there is no browser: what scripts/install_system_deps.sh said (build/system-deps.txt), if it ran."""
    said = Path(__file__).resolve().parent.parent / "build" / "system-deps.txt"
    why = said.read_text().strip() if said.is_file() else "scripts/install_system_deps.sh has not run"
    return f"no Chromium at {CHROMIUM}: {why}"


@pytest.mark.skipif(not CHROMIUM.exists(), reason=_no_browser_reason())
def test_pa_notebook_runs_in_jupyterlab_and_slider_changes_picture(tmp_path, repo_root):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    _prepare_workdir(tmp_path, repo_root)
    port, token = _free_port(), uuid.uuid4().hex
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"),
               MPLBACKEND="module://matplotlib_inline.backend_inline", OMP_NUM_THREADS="2")
    env.pop("PAN_WORKBOOK_HEADLESS", None)
    log_path = tmp_path / "jupyter.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", "--allow-root", f"--ServerApp.root_dir={tmp_path}",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with log_path.open("w") as log:
        server = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(f"{base}/api/status?token={token}", server, log_path)
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(60_000)
                page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}", wait_until="domcontentloaded")
                page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook .jp-CodeCell')",
                                       timeout=120_000)
                # the kernel must be up before "run all" (else the first cells wait on a dialog-free restart)
                page.wait_for_function(
                    "() => { const w = window.jupyterapp.shell.currentWidget;"
                    " return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
                    " && w.sessionContext.session.kernel.status === 'idle'; }", timeout=120_000)
                page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                page.wait_for_function(
                    "() => { const ps = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];"
                    " return ps.length > 0 && ps.every(p => /\\[\\d+\\]/.test(p.textContent)); }",
                    timeout=240_000, polling=1000)
                text = page.inner_text(".jp-Notebook")
                assert "Traceback (most recent call last)" not in text, text[-4000:]

                image = page.locator("img.pan-motion-image")
                image.scroll_into_view_if_needed()
                before_src = image.get_attribute("src")
                before_png = image.screenshot()
                handle = page.locator(".pan-pair-slider .noUi-handle")
                handle.focus()
                handle.press("ArrowRight")  # frame pair 0 -> 1
                page.wait_for_function(
                    "(old) => { const img = document.querySelector('img.pan-motion-image');"
                    " return img && img.src !== old; }", arg=before_src, timeout=60_000)
                page.wait_for_timeout(500)  # let the new blob image paint
                readout = page.inner_text(".pan-pair-slider .widget-readout")
                after_png = image.screenshot()
                assert readout.strip() == "1"
                assert after_png != before_png, "the picture did not change when the slider moved"

                # play (jslinked to the slider in the browser) advances to the last pair and redraws
                src_at_pair_1 = image.get_attribute("src")
                page.locator(".pan-motion-explorer .widget-play button").first.click()
                page.wait_for_function(
                    "() => document.querySelector('.pan-pair-slider .widget-readout').textContent.trim() === '2'",
                    timeout=30_000)
                page.wait_for_function(
                    "(old) => document.querySelector('img.pan-motion-image').src !== old",
                    arg=src_at_pair_1, timeout=30_000)

                shot = tmp_path / "02_pa_visualisation.png"
                page.locator(".pan-motion-explorer").screenshot(path=str(shot))
                assert shot.stat().st_size > 5_000
                # kept as a test artefact under build/ (ignored by git); PAN_KEEP_SCREENSHOT=1 refreshes
                # the committed copy in results/browser/ (when it is small enough)
                keep = repo_root / "build" / "test-artifacts"
                if os.environ.get("PAN_KEEP_SCREENSHOT") == "1" and shot.stat().st_size <= SCREENSHOT_KEEP_BYTES:
                    keep = repo_root / "results" / "browser"
                keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, keep / shot.name)
            finally:
                browser.close()
    finally:
        _stop(server)
