"""Fixtures for the dashboard tests: the weights they use, a running app server, a headless browser.

``GNET_WEIGHTS`` picks the weights source the app starts on (default below); screenshots
go to ``$GNET_ARTIFACTS`` or ``tests/artifacts``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboard" / "serve.py"  # the app as run.sh serves it
TEST_WEIGHTS = os.environ.get("GNET_WEIGHTS", "bundled")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_S = 90


@pytest.fixture
def app_weights(monkeypatch: pytest.MonkeyPatch) -> str:
    """The app (run in-process by AppTest) starts on the tests' weights source."""
    monkeypatch.setenv("GNET_WEIGHTS", TEST_WEIGHTS)
    return TEST_WEIGHTS


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("GNET_ARTIFACTS", ROOT / "tests" / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode} before it was healthy; see {log}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"streamlit was not healthy after {SERVER_START_S} s; see {log}")


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """/usr/bin/chromium; its absence skips the browser test locally and fails it in CI."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium to run the browser test)")
    return CHROMIUM


@pytest.fixture(scope="session")
def app_url(chromium_path: Path, artifacts_dir: Path) -> Iterator[str]:
    """A ``streamlit run dashboard/serve.py`` server (as run.sh starts it) on a free port, stopped at the end of the session."""
    port = _free_port()
    log = artifacts_dir / "streamlit.log"
    env = {**os.environ, "GNET_WEIGHTS": TEST_WEIGHTS, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port), "--server.address",
        "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
        # Without this, an edit under dashboard/ while the tests run flags the app's source as
        # changed, and the running script never finishes: a false failure for whoever is editing.
        "--server.fileWatcherType", "none",
    ]
    with log.open("w") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, server, log)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture(scope="session")
def browser(chromium_path: Path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
