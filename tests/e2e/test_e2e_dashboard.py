"""End to end in a real browser: a new user's first visit, a real sweep, charts, bad uploads.

Run with ``.venv/bin/python -m pytest tests/e2e -m e2e``. Screenshots go to
assets/screenshots/ (the README shows them).
"""

import re
import time
import zipfile

import pytest

from servers import tensorflow_loaded
from waits import settle

pytestmark = pytest.mark.e2e

# How long the first sweep takes is the benchmark's to report (bench/run.py: the default sweep, cold and
# warm, and the app's start); here a generous wait only keeps a hung sweep from hanging the run.
SWEEP_WAIT_S = 600
PTQ = ("float32", "float16", "dynamic", "int8", "int16x8")


@pytest.fixture(scope="module")
def server(tmp_path_factory, app_server):
    """This file's own app server, on an empty data folder: its first test is a new user's first visit. (The
    session's server is shared by the files a test process runs: Layer insight's runs, say, were in its store
    when this file came after it, and Home had results to show.)"""
    home = tmp_path_factory.mktemp("first-visit-home")
    with app_server(home) as url:
        yield url, home


def title(page, text):
    page.locator("h1", has_text=text).wait_for()


def open_page(page, name, heading=None):
    """Click a page in the sidebar navigation and wait for its title."""
    page.locator('[data-testid="stSidebarNavLink"]', has_text=name).click()
    title(page, heading or name)


def shoot(page, path, height):
    """Screenshot the top of the page at a given window height (Streamlit scrolls inside the page)."""
    page.set_viewport_size({"width": 1440, "height": height})
    settle(page)  # layout and Plotly redraw at the new size
    page.locator("h1").first.evaluate("e => e.scrollIntoView({block: 'end'})")
    page.screenshot(path=path)
    page.set_viewport_size({"width": 1440, "height": 1000})


def sidebar_text(page):
    return page.locator('[data-testid="stSidebar"]').inner_text()


def errors(page, text):
    return page.locator('[data-testid="stAlertContentError"]', has_text=text)


def test_first_visit_runs_five_schemes_and_compares_them(server, page, screenshots):
    url, home = server
    started = time.monotonic()
    page.goto(url)
    title(page, "Shrink")
    page.get_by_text("No results yet").wait_for()
    assert "digits_cnn" in sidebar_text(page) and str(home) in sidebar_text(page)

    open_page(page, "Optimize")
    assert "digits_cnn" in sidebar_text(page)  # the sidebar is on every page
    page.get_by_role("button", name="Run 5 schemes").click()
    page.get_by_role("heading", name="Progress").wait_for()
    page.get_by_text("— converting").or_(page.get_by_text("— measuring")).first.wait_for(timeout=SWEEP_WAIT_S * 1000)
    shoot(page, screenshots / "optimize-running.png", 1900)
    page.get_by_text("5 of 5 schemes finished").wait_for(timeout=SWEEP_WAIT_S * 1000)
    shoot(page, screenshots / "optimize.png", 2100)

    open_page(page, "Compare")
    page.locator(".js-plotly-plot").nth(4).wait_for()
    elapsed = time.monotonic() - started
    assert page.locator(".js-plotly-plot").count() == 5  # two scatter plots, two bar charts, Table 2
    print(f"opening the page to charts took {elapsed:.0f} s (screenshots included)")
    assert page.locator('[data-testid="stDataFrame"]').count() >= 2  # Table 1 and Table 2
    shoot(page, screenshots / "compare.png", 2300)

    open_page(page, "Export")
    with page.expect_download() as download:
        page.get_by_role("button", name="Results as CSV").click()
    csv = download.value.path().read_text()
    assert all(scheme in csv for scheme in PTQ)
    with page.expect_download() as download:
        page.get_by_role("button", name="as HTML").click()
    html = download.value.path().read_text()
    assert "plotly" in html.lower() and download.value.suggested_filename.endswith(".html")
    with page.expect_download() as download:
        page.get_by_role("button", name="model (.tflite").click()
    assert download.value.path().read_bytes()[4:8] == b"TFL3"
    shoot(page, screenshots / "export.png", 1500)

    open_page(page, "Home", heading="Shrink")
    page.get_by_text("Most recent model and data").wait_for()
    assert "5 stored runs" in sidebar_text(page)
    shoot(page, screenshots / "home.png", 1100)


def upload_model(page, path):
    page.get_by_text("Upload a model file").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))


def test_bad_uploads_are_explained_and_the_app_keeps_working(server, page, screenshots, tmp_path):
    url, _ = server
    page.goto(url)
    title(page, "Shrink")
    open_page(page, "Model & data")
    page.get_by_text("fit together").wait_for()
    shoot(page, screenshots / "model_data.png", 1150)

    not_a_model = tmp_path / "notes.keras"
    not_a_model.write_bytes(b"this is not a model")
    upload_model(page, not_a_model)
    errors(page, "not a valid .keras file").wait_for()
    assert "notes.keras" in sidebar_text(page)
    page.screenshot(path=screenshots / "bad-upload.png")

    escape = tmp_path / "escape.zip"
    with zipfile.ZipFile(escape, "w") as bundle:
        bundle.writestr("../evil.keras", b"x")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(escape))
    errors(page, "points outside the archive folder").wait_for()

    page.get_by_text("Built-in zoo").click()
    page.get_by_text("fit together").wait_for()
    assert errors(page, "").count() == 0
    open_page(page, "Home", heading="Shrink")
    assert "digits_cnn" in sidebar_text(page)


def test_a_hostile_upload_shows_the_reason_and_run_stays_disabled(server, page, screenshots, tmp_path):
    """A .keras whose slicing layer calls tf.io.write_file on a path of its choosing (tests/hostile_models.py)."""
    import hostile_models
    from playwright.sync_api import expect

    url, _ = server
    path, marker = hostile_models.CATALOGUE["keras_slicing_write_file"][0](tmp_path, tmp_path / "pwned.marker"), \
        tmp_path / "pwned.marker"
    page.goto(url)
    title(page, "Shrink")
    open_page(page, "Model & data")
    page.get_by_text("fit together").wait_for()
    upload_model(page, path)
    errors(page, "calls tf.io.write_file, which can reach files").wait_for()
    page.screenshot(path=screenshots / "hostile-upload.png")
    open_page(page, "Optimize")
    run = page.get_by_role("button", name=re.compile(r"^Run \d+ scheme"))
    expect(run).to_be_disabled()
    assert not marker.exists()


def test_coming_back_to_optimize_writes_no_widget_warning_to_the_servers_log(server, page):
    """Kept widgets take their defaults from the session state alone: Optimize's time budget had a default of
    its own as well, and the server's log warned ("... its value set via the Session State API") each time a
    person came back to the page."""
    url, home = server
    page.goto(f"{url}/optimize")
    title(page, "Optimize")
    for name in ("Compare", "Optimize"):
        open_page(page, name)
    page.get_by_text("Time budget per scheme").wait_for()
    page.wait_for_timeout(1_000)
    assert "Session State API" not in (home / "streamlit.log").read_text()


def test_the_server_itself_never_loaded_tensorflow(server):
    """After a sweep, Compare, Export's downloads, Model & data and bad uploads (the tests above, on this
    server), the server has not loaded TensorFlow: sweeps run in workers and page work in isolated processes."""
    from optlib.engine.store import Store

    url, home = server
    assert len(Store(home / "results.sqlite").rows()) >= 5  # the sweep above ran on this server
    assert not tensorflow_loaded(url)


def test_a_page_address_opened_first_on_a_fresh_server_works(fresh_server, page):
    # The first request of a fresh server names a page: it must still get the router and its sidebar.
    page.goto(f"{fresh_server}/compare")
    title(page, "Compare")
    page.get_by_text("No stored results yet").wait_for()
    assert "Current selection" in sidebar_text(page)
    page.reload()
    title(page, "Compare")
    assert "Current selection" in sidebar_text(page)


def test_nothing_is_fetched_from_another_host(server, page):
    # The favicon and everything else come from this server: the app works offline in a classroom. A new
    # browser context, so nothing comes from the browser's cache either.
    url, _ = server
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{url}/")
    title(page, "Shrink and speed up TensorFlow Lite models")
    page.wait_for_timeout(1500)
    icon = page.locator("link[rel*='icon']").first.get_attribute("href")
    assert icon and (not icon.startswith(("http://", "https://")) or icon.startswith(url)), icon
    assert [seen for seen in requests if not seen.startswith(url) and not seen.startswith("data:")] == []
