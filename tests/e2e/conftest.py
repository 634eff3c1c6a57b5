"""Fixtures for the end-to-end tests: the real Streamlit server and headless Chromium.

The server runs ``streamlit run app.py`` on a free port with its own empty
data folder (OPTLIB_HOME), exactly as a new user would start it. The browser
is Debian's Chromium driven by Playwright (Playwright's own browser download
does not work on these machines).
"""

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("OPTLIB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = ROOT / "assets" / "screenshots"


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: real server and real browser (Chromium + Playwright)")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(url, process, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not answer on {url} within {timeout} s")


@contextlib.contextmanager
def running_app(home):
    """Start ``streamlit run app.py`` with OPTLIB_HOME=home on a free port; yield its URL; stop it."""
    port = _free_port()
    log = open(home / "streamlit.log", "w")
    env = {"OPTLIB_SHARED_GALLERY": "1", **os.environ, "OPTLIB_HOME": str(home)}  # stores filled by the CLI too
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="session")
def app_server():
    """``running_app`` itself: start the app on a data folder the test prepared."""
    return running_app


@pytest.fixture(scope="session")
def server(tmp_path_factory, seed_zoo):
    """The app as a new user starts it, with a data folder that has no results; yields (url, data folder).

    Its zoo folder holds the built-in model already trained, as the first sweep leaves it (the dashboard's first
    visit, on a data folder with nothing at all, is test_e2e_dashboard.py's own server): the files a test process
    runs share this server, and the first of them no longer waits for the training."""
    home = seed_zoo(tmp_path_factory.mktemp("e2e-home"))
    with running_app(home) as url:
        yield url, home


@pytest.fixture(scope="session")
def three_models(tmp_path_factory, seed_zoo):
    """An app server whose store holds the built-in model, an uploaded one and MobileNetV2
    (:mod:`three_model_store`), and whose zoo folder holds the built-in model trained, as the session that made
    those runs left it: for every test of this test process that looks at several models. They only read it, so
    one server serves them all (conftest's TOGETHER sends their files to one test process)."""
    from three_model_store import write_three_models

    with running_app(write_three_models(seed_zoo(tmp_path_factory.mktemp("three-models")))) as url:
        yield url


@pytest.fixture
def fresh_server(tmp_path, seed_zoo):
    """Another app server, just started, whose first request is the test's own; its data folder has no
    results, and the built-in model trained already (the first visit on ``server`` trains it)."""
    with running_app(seed_zoo(tmp_path)) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


@pytest.fixture(scope="session")
def screenshots():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
