"""End to end in a real browser: Compare with three models at 1024 and 1920 px, Present, the Wizard's path, Export's bundle.

The store holds three models the way a real session leaves it (three_model_store.py, served by the
``three_models`` fixture): the layout, not the measurement, is under test here.
"""

import io
import zipfile

import pytest

from servers import tensorflow_loaded
from waits import settle

pytestmark = pytest.mark.e2e

WIDTHS = (1024, 1920)

def open_compare_with_every_model(page, url):
    page.goto(f"{url}/compare")
    page.locator("h1", has_text="Compare").wait_for()
    settle(page)
    page.locator('[data-testid="stMultiSelect"]').first.get_by_role("button", name="Clear all").click(
        no_wait_after=True)
    settle(page)
    page.locator('[data-testid="stPlotlyChart"]').nth(4).wait_for()
    # Every model's runs are drawn once the size and latency bars have a panel per model (three).
    page.wait_for_function("""() => { const charts = document.querySelectorAll('[data-testid="stPlotlyChart"]');
        return charts.length > 3 && [2, 3].every(i => charts[i].querySelectorAll('.cartesianlayer .subplot').length === 3); }""",
                           timeout=120_000)
    settle(page)


def overlaps(a, b, slack=1.0):
    """True when two boxes share more than a sliver (``slack`` px on each side is allowed)."""
    return (a["x"] + slack < b["x"] + b["width"] and b["x"] + slack < a["x"] + a["width"] and
            a["y"] + slack < b["y"] + b["height"] and b["y"] + slack < a["y"] + a["height"])


def inside(inner, outer, slack=1.0):
    return (inner["x"] >= outer["x"] - slack and inner["y"] >= outer["y"] - slack and
            inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack and
            inner["y"] + inner["height"] <= outer["y"] + outer["height"] + slack)


def page_blocks(page):
    """Boxes of the page's elements, one per element of the main column (columns and expanders hold their own)."""
    return page.evaluate("""() => [...document.querySelectorAll(
        '[data-testid="stMainBlockContainer"] [data-testid="stElementContainer"]')]
        .filter(e => e.offsetParent !== null && !e.closest('details:not([open])'))  // folded: not drawn
        .map(e => { const r = e.getBoundingClientRect();
                    return {x: r.x, y: r.y, width: r.width, height: r.height,
                            what: (e.innerText || e.querySelector('[data-testid]')?.dataset.testid || '').slice(0, 40)}; })
        .filter(b => b.width > 0 && b.height > 0)""")


def chart_texts(chart):
    """Each Plotly text of a chart (title, subtitle, axis titles, legend, panel titles) with its box."""
    return chart.evaluate("""c => {
        const svg = c.querySelector('svg.main-svg'); const r = svg.getBoundingClientRect();
        const pick = (sel, kind) => [...c.querySelectorAll(sel)].map(e => {
            const b = e.getBoundingClientRect();
            return {kind, text: e.textContent, x: b.x, y: b.y, width: b.width, height: b.height}; })
            .filter(b => b.width > 0 && b.text.trim());
        return {chart: {x: r.x, y: r.y, width: r.width, height: r.height},
                texts: [...pick('.g-gtitle text.gtitle', 'title'), ...pick('.g-gtitle text.gtitle-subtitle', 'subtitle'),
                        ...pick('.g-xtitle text, .g-x2title text, .g-x3title text', 'xtitle'),
                        ...pick('.legend text.legendtext', 'legend'),
                        ...pick('.infolayer .annotation-text', 'annotation')]}; }""")


def bar_heights_per_panel(chart):
    """The tallest bar (px) in each panel of a bar chart."""
    return chart.evaluate("""c => [...c.querySelectorAll('.cartesianlayer .subplot')].map(panel =>
        Math.max(0, ...[...panel.querySelectorAll('.barlayer .point path')].map(p => p.getBoundingClientRect().height)))""")


def test_compare_with_three_models_has_no_overlapping_text_and_every_models_bars_show(three_models, browser,
                                                                                       screenshots):
    context = browser.new_context(viewport={"width": WIDTHS[0], "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        open_compare_with_every_model(page, three_models)
        assert "3 finished" not in page.inner_text("body")  # every model's runs, not one model's
        for width in WIDTHS:  # the page at 1024 px, then the same page resized to 1920 px (redrawn, not reloaded)
            page.set_viewport_size({"width": width, "height": 1000})
            settle(page)
            blocks = page_blocks(page)
            assert len(blocks) > 15
            for i, a in enumerate(blocks):
                for b in blocks[i + 1:]:
                    if not (inside(a, b) or inside(b, a)):
                        assert not overlaps(a, b), f"{a['what']!r} overlaps {b['what']!r} at {width} px"
            charts = page.locator('[data-testid="stPlotlyChart"]')
            for index in range(charts.count()):
                found = chart_texts(charts.nth(index))
                titles = [t for t in found["texts"] if t["kind"] in ("title", "subtitle")]
                assert titles, f"chart {index} has no title"
                for text in titles:  # not cut off by the chart's edge, and clear of the legend and the axes
                    assert inside(text, found["chart"]), f"{text['text']!r} is cut off at {width} px"
                    for other in found["texts"]:
                        if other["kind"] not in ("title", "subtitle"):
                            assert not overlaps(text, other), f"{text['text']!r} overlaps {other['text']!r}"
            size_bars, latency_bars = charts.nth(2), charts.nth(3)
            for chart in (size_bars, latency_bars):
                heights = bar_heights_per_panel(chart)
                assert len(heights) == 3 and min(heights) >= 20, (width, heights)  # a panel per model, none flat
            page.set_viewport_size({"width": width, "height": 5200})
            settle(page)
            page.screenshot(path=screenshots / f"compare-three-models-{width}.png", full_page=True)
    finally:
        context.close()


def test_present_and_the_wizard_path_read_large(three_models, browser, screenshots):
    context = browser.new_context(viewport={"width": 1024, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{three_models}/present")
        page.locator("h2", has_text="4 · The verdict").wait_for()
        settle(page)
        value = page.locator('[data-testid="stMetricValue"] p').first
        assert float(value.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 32
        assert "For size, take" in page.inner_text("body")
        page.set_viewport_size({"width": 1024, "height": 2600})
        settle(page)
        page.screenshot(path=screenshots / "present.png", full_page=True)

        page.goto(f"{three_models}/wizard")
        page.locator("h1", has_text="Scheme wizard").wait_for()
        settle(page)
        for answer in ("Unlabelled representative samples", "CPU", "Model size (file and memory)"):
            page.get_by_text(answer, exact=True).first.click(no_wait_after=True)
            settle(page)
        tree = page.locator('[data-testid="stGraphVizChart"] svg text')
        tree.first.wait_for()
        heights = [box["height"] for box in (tree.nth(i).bounding_box() for i in range(tree.count()))]
        assert min(heights) >= 12, heights  # the whole tree drew its text about 8 px high at this width
    finally:
        context.close()


def test_export_bundles_the_run_with_its_source_model(three_models, browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(f"{three_models}/export")
        page.locator("h1", has_text="Export").wait_for()
        settle(page)
        # The bundle's source model is read from the zoo in a process of its own: give it minutes on a busy machine.
        with page.expect_download(timeout=300_000) as download:
            page.get_by_role("button", name="Download the bundle (.zip)").click()
        content = open(download.value.path(), "rb").read()
        with zipfile.ZipFile(io.BytesIO(content)) as bundle:
            names = set(bundle.namelist())
            readme = bundle.read("README.md").decode()
        assert {"README.md", "reproduce.py", "data_recipe.json", "recipe.json", "result.json",
                "model/digits_cnn.keras"} <= names
        assert any(name.endswith(".tflite") for name in names)
        assert "`model/digits_cnn.keras`: the source Keras model" in readme
        assert not tensorflow_loaded(three_models)  # the zoo model was built and saved in a process of its own
    finally:
        context.close()
