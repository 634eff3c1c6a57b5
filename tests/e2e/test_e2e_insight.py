"""End to end in a real browser: layer insight, one-click selective quantization and a small search.

Run with ``.venv/bin/python -m pytest tests/e2e -m e2e``. The screenshot goes
to assets/screenshots/insight.png.
"""

import re

import pytest

from grids import GRID, grid
from servers import tensorflow_loaded
from waits import settle

pytestmark = pytest.mark.e2e

JOB_TIMEOUT_MS = 240_000  # three schemes on a busy machine; only a hung job takes this long


def plot(page, text):
    """The Plotly chart whose drawing contains ``text`` (titles, ticks and legends are SVG text); the first, as
    while the page reruns Streamlit briefly shows the chart it drew before beside the new one."""
    return page.locator(".js-plotly-plot", has_text=text).first


def shoot_whole_page(page, path):
    """Screenshot the whole page: the window is made as tall as the page (Streamlit scrolls inside it)."""
    settle(page)
    height = page.locator('[data-testid="stMainBlockContainer"]').evaluate("e => e.scrollHeight")
    page.set_viewport_size({"width": 1440, "height": int(height) + 40})
    settle(page)  # layout and Plotly redraw at the new size
    page.locator("h1").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.screenshot(path=path)
    page.set_viewport_size({"width": 1440, "height": 1000})


def frame_with(page, column, timeout_s=30):
    """The index of the dataframe that has ``column`` (its grid fills a moment after the page draws it)."""
    frames = page.locator('[data-testid="stDataFrame"]')
    for _ in range(timeout_s * 4):
        for index in range(frames.count()):
            if column in (frames.nth(index).evaluate(GRID) or [[]])[0]:
                return index
        page.wait_for_timeout(250)
    raise AssertionError(f"no table with a {column!r} column")


def test_layers_one_click_selective_and_a_small_search(server, page, screenshots):
    url, _ = server
    page.goto(url)
    page.locator("h1", has_text="Shrink").wait_for()
    page.locator('[data-testid="stSidebarNavLink"]', has_text="Layer insight & search").click()
    page.locator("h1", has_text="Layer insight & search").wait_for()
    assert "digits_cnn" in page.locator('[data-testid="stSidebar"]').inner_text()

    # Which layers lose accuracy: the ranking, int8 against int16x8 and the debugger's metrics.
    page.get_by_role("button", name="Compare layers").click()
    keep = page.get_by_role("button", name="Keep 1 layer in float and re-convert")
    not_needed = page.get_by_text("keeping layers in float is not needed")
    keep.or_(not_needed).first.wait_for(timeout=JOB_TIMEOUT_MS)
    if not_needed.count():  # int8 lost nothing here: no layer is chosen for you, and the page says so
        page.get_by_role("button", name="Suggest the worst N").click()
        keep.wait_for()
    plot(page, "Layers that lose most in int8").wait_for()
    plot(page, "int8 against int16 activations").wait_for()
    plot(page, "QuantizationDebugger").wait_for()
    plot(page, "Weights of").wait_for()
    assert page.get_by_text("Compared on 64 inputs").count() == 1
    worst = page.locator('[data-testid="stMultiSelect"]').inner_text()
    assert "int8 error" in worst  # the worst layer is already chosen

    # One click keeps it in float; the new int8_selective run is compared with float32 and int8.
    page.get_by_role("button", name="Keep 1 layer in float and re-convert").click()
    page.get_by_text("kept in float:").wait_for(timeout=JOB_TIMEOUT_MS)
    before_after = plot(page, "Before and after")
    before_after.wait_for()
    assert "int8_selective" in before_after.inner_text()
    page.get_by_text("Code for int8_selective").click()
    page.get_by_text("get_nondebug_quantized_model").wait_for()
    page.get_by_text("Code for int8_selective").click()  # closed again: the screenshot shows the charts

    # LiteRT Quantizer's per-tensor validation of the int8 run, computed in a process of its own.
    page.get_by_role("button", name="Validate tensors").click()
    page.get_by_text("Lowest SNR of an activation").wait_for(timeout=JOB_TIMEOUT_MS)
    page.get_by_text(re.compile(r"int8 run #\d+ \(converter\) against float32 run #\d+ on 8 inputs")).wait_for()
    assert not page.locator('[data-testid="stException"]').count()
    tensors = grid(page, frame_with(page, "Cosine similarity"), lambda rows: len(rows) > 5)
    assert tensors[0]["Kind"] == "layer output" and float(tensors[0]["SNR (dB)"]) > 20
    errors = {row["Channel error"] for row in tensors}  # the grid's text of a figure: "" where it has none;
    assert "None" not in errors and "" in errors       # the canvas draws the table's placeholder "—" there

    # A small search: two candidates, then the trail on the Pareto chart with the target line.
    settle(page)  # a value typed while the page still reruns after the validation can be drawn over
    trials = page.get_by_label("Trials", exact=True)
    trials.fill("2")
    trials.press("Enter")
    search = page.get_by_role("button", name="Search 2 candidates")
    search.wait_for()
    search.click()
    page.get_by_text("meets the target").or_(page.get_by_text("No candidate met the target")).first.wait_for(
        timeout=JOB_TIMEOUT_MS)
    trail = plot(page, "Search trail")
    trail.wait_for()
    text = trail.inner_text()
    assert "target: top-1" in text and "float32 (baseline)" in text and "Pareto front" in text
    assert "chosen" in text or "closest" in text
    shoot_whole_page(page, screenshots / "insight.png")
    assert not tensorflow_loaded(url)  # the comparison and the validation ran in processes of their own

    # Compare lists the new run like any other.
    page.locator('[data-testid="stSidebarNavLink"]', has_text="Compare").click()
    page.locator("h1", has_text="Compare").wait_for()
    plot(page, "Accuracy vs model size").wait_for()
    assert "int8_selective" in plot(page, "Accuracy vs model size").inner_text()
