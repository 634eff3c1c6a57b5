"""End to end in a real browser: Compare with three models at 1024 and 1920 px, Present, the Wizard's path, Export's bundle.

The store holds three models the way a real session leaves it: the built-in
digits CNN, an uploaded model, and MobileNetV2 (13.9 MB beside 0.2 MB ones,
untrained so without accuracy). The rows are written through the store like
the sweep's driver writes them, with figures shaped like this machine's runs;
the layout, not the measurement, is under test here.
"""

import io
import os
import zipfile
from types import SimpleNamespace

import pytest

from servers import tensorflow_loaded
from waits import settle

pytestmark = pytest.mark.e2e

WIDTHS = (1024, 1920)

# scheme: (top-1 or None, size, gzip, median ms) per model, shaped like runs on this machine.
FIGURES = {
    "digits_cnn": {"float32": (0.975, 240_340, 211_300, 0.020), "float16": (0.975, 122_600, 107_800, 0.019),
                   "dynamic": (0.975, 66_200, 59_200, 0.011), "int8": (0.975, 66_500, 57_900, 0.012),
                   "int16x8": (0.975, 68_500, 60_000, 0.54), "qat": (0.975, 65_800, 48_700, 0.013),
                   "prune": (0.972, 240_300, 126_000, 0.018), "cluster": (0.981, 240_300, 40_100, 0.018)},
    "uploaded_cnn.keras": {"float32": (0.872, 41_200, 37_100, 0.0040), "float16": (0.872, 22_600, 19_300, 0.0041),
                           "dynamic": (0.872, 13_900, 12_200, 0.0030), "int8": (0.872, 14_300, 11_500, 0.0031),
                           "qat": (0.919, 13_900, 10_900, 0.0031)},
    "mobilenet_v2": {"float32": (None, 13_920_000, 12_900_000, 8.3), "float16": (None, 7_010_000, 6_230_000, 8.1),
                     "dynamic": (None, 3_740_000, 3_540_000, 13.1), "int8": (None, 3_940_000, 3_600_000, 12.1)},
}


TFLM_ASSERT = ("input->type == kTfLiteInt8 || input->type == kTfLiteInt16 || input->type == kTfLiteUInt8 was not "
               "true.; Node DEQUANTIZE (number 0) failed to prepare with status 1")


def targets(scheme, size):
    """Where a run runs, shaped like the checks' entries on this machine (tests/unit/test_targets.py measures them)."""
    integer = scheme in ("int8", "qat")
    micro = ({"runs": False, "reason": f"not run: the model's {size / 1e6:.1f} MB is over the 1.0 MB this check runs "
                                       "on TensorFlow Lite for Microcontrollers (OPTLIB_MICRO_MAX_MB sets it)"}
             if size > 1_000_000 else
             {"runs": False, "reason": TFLM_ASSERT} if scheme == "float16" else
             {"runs": False, "reason": "Hybrid models are not supported on TFLite Micro."} if scheme == "dynamic" else
             {"runs": True, "reason": None, "arena_bytes": size // 4, "flash_bytes": size})
    return {"cpu": {"runs": True, "reason": None},
            "gpu": ({"runs": False, "reason": "int16 activations (the delegate runs float and 8-bit models): CONV_2D x2"}
                    if scheme == "int16x8" else {"runs": True, "reason": None}),
            "integer_only": ({"runs": False, "reason": "input is float32; output is float32 (int8 with int8_io=true "
                                                       "makes them integer)", "input_type": "float32"} if integer else
                             {"runs": False, "reason": "8 of 8 ops compute in float32: CONV_2D x2, FULLY_CONNECTED; "
                                                       "input is float32"}),
            "micro": micro}


def metrics(accuracy, size, gz, latency, scheme):
    return {"targets": targets(scheme, size), "size_bytes": size, "gzip_bytes": gz, "threads": 1, "trained": accuracy is not None, "classes": 10,
            "recipe": {"converter": {"optimizations": [] if scheme == "float32" else ["DEFAULT"]}},
            "data_recipe": {"scale": "x / 16 -> [0, 1]"}, "accuracy": accuracy, "accuracy_samples": 360,
            "latency_ms": {"median": latency, "p90": latency * 1.2, "mean": latency, "std": latency * 0.1,
                           "min": latency * 0.9, "runs": 50, "warmup": 5, "threads": 1},
            "sparsity": 0.0, "max_unique_weights": 255, "build_s": 1.0}


def put_run(store, scheme, model, model_fp, dataset, data_fp, figures):
    """Write one run as the sweep's driver does: a 'running' row, then its Result with the artifact."""
    from optlib.engine import schemes
    from optlib.engine.job import Inputs, Result, Spec
    from optlib.engine.store import run_key

    settings = schemes.settings_for(scheme)
    inputs = Inputs(SimpleNamespace(name=model, fingerprint=model_fp), SimpleNamespace(name=dataset, fingerprint=data_fp))
    spec = Spec(0, scheme, settings, run_key(model_fp, data_fp, scheme, settings))
    run_id = store.start(inputs, spec, "testhost", 1)
    store.finish(run_id, Result(spec, "ok", None, metrics(*figures, scheme), b"TFL3" + bytes(figures[1] // 1000)))


@pytest.fixture(scope="module")
def three_models(tmp_path_factory, app_server):
    """An app server whose store holds the built-in model, an uploaded one and MobileNetV2."""
    home = tmp_path_factory.mktemp("three-models")
    previous = os.environ.get("OPTLIB_HOME")
    os.environ["OPTLIB_HOME"] = str(home)
    try:
        from optlib.engine.store import Store
        from optlib.inputs import data_refs, models

        store = Store()
        for model, schemes in FIGURES.items():
            fingerprint = models.resolve(model).fingerprint if model in models.ZOO else f"{model}-fp"
            dataset = "digits.npz" if model.endswith(".keras") else "digits"
            data_fp = data_refs.resolve("digits").fingerprint if dataset == "digits" else "digits-npz-fp"
            for scheme, figures in schemes.items():
                put_run(store, scheme, model, fingerprint, dataset, data_fp, figures)
    finally:
        if previous is None:
            del os.environ["OPTLIB_HOME"]
        else:
            os.environ["OPTLIB_HOME"] = previous
    with app_server(home) as url:
        yield url


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


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_with_three_models_has_no_overlapping_text_and_every_models_bars_show(three_models, browser,
                                                                                       screenshots, width):
    context = browser.new_context(viewport={"width": width, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        open_compare_with_every_model(page, three_models)
        assert "3 finished" not in page.inner_text("body")  # every model's runs, not one model's
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
            assert len(heights) == 3 and min(heights) >= 20, heights  # one panel per model, none flattened
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
        # The first bundle of the built-in model trains it (its zoo cache is empty here): give it minutes.
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
