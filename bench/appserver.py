"""Shared by the app benchmarks: a real `streamlit run` server, its memory, and a headless Chromium to drive it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(repo: Path, weights: str = "bundled", python: str = sys.executable) -> Iterator[tuple[str, int]]:
    """(url, pid) of `streamlit run dashboard/serve.py` (as run.sh starts it) started from ``repo``, stopped on exit."""
    port = free_port()
    env = {**os.environ, "GNET_WEIGHTS": weights, "PYTHONPATH": str(repo)}
    proc = subprocess.Popen(
        [python, "-m", "streamlit", "run", "dashboard/serve.py", "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            time.sleep(0.5)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def wait_idle(page, timeout_s: float = 300) -> None:
    """Until Streamlit's running indicator and spinners have been gone for a second."""
    page.wait_for_timeout(300)
    deadline = time.monotonic() + timeout_s
    quiet = None
    while time.monotonic() < deadline:
        if page.locator('[data-testid="stStatusWidget"], [data-testid="stSpinner"]').count():
            quiet = None
        elif quiet is None:
            quiet = time.monotonic()
        elif time.monotonic() - quiet > 1.0:
            return
        page.wait_for_timeout(200)
    raise TimeoutError("the app was still running")


def open_session(browser, url: str):
    page = browser.new_context().new_page()
    page.set_default_timeout(300_000)
    page.goto(url)
    page.locator('[data-testid="stSidebarNav"]').wait_for()
    wait_idle(page)
    page.locator('[data-testid="stSidebar"] [data-testid="stRadio"] label').filter(has_text="Upload").click()
    wait_idle(page)
    return page


def upload(page, path: Path) -> None:
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(path))
    sidebar.get_by_text(path.name).first.wait_for()
    wait_idle(page)


def visit(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
    wait_idle(page)
