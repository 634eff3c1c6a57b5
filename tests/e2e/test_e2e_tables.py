"""End to end in a real browser: Table 1 reproduced on this machine for MobileNet v2, checked against Compare.

A fresh server with its own empty store and an empty Keras cache (KERAS_HOME),
so no ImageNet weights are looked up: MobileNet v2 is untrained and its row
gives size and latency only. The reproduction runs for real (float32 and
int8 conversions, about a minute or two on a 2-core machine).

Run with ``.venv/bin/python -m pytest tests/e2e/test_e2e_tables.py -m e2e``.
"""

import pytest
from playwright.sync_api import expect

from grids import grid, sort_by
from optlib.analysis import report, tables
from waits import settle

pytestmark = pytest.mark.e2e

REPRODUCE_BUDGET_S = 480  # measured ~75 s for mobilenet_v2 float32 + int8; room for a busy machine
TRACES = ("() => [...document.querySelectorAll('.js-plotly-plot')].map(e => e.data.map(t => ({name: t.name, "
          "xaxis: t.xaxis || 'x', x: Array.from((t.x && t.x._inputArray) || t.x || []), "
          "y: Array.from((t.y && t.y._inputArray) || t.y || [])})))")


@pytest.fixture(autouse=True)
def empty_keras_cache(tmp_path_factory, monkeypatch):
    """The server inherits this environment: an empty Keras cache, so no ImageNet weights are found."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras")))


def local_rows(page, index):
    """This machine's rows of a comparison table (waiting for the grid to show them)."""
    def mine(rows):
        return [row for row in rows if row["Source"].startswith("This machine")]

    return mine(grid(page, index, mine))


def open_page(page, name, heading=None):
    page.locator('[data-testid="stSidebarNavLink"]', has_text=name).click()
    page.locator("h1", has_text=heading or name).wait_for()


def shoot(page, path, height):
    page.set_viewport_size({"width": 1440, "height": height})
    settle(page)  # layout and Plotly redraw at the new size
    page.locator("h1").first.evaluate("e => e.scrollIntoView({block: 'end'})")
    page.screenshot(path=path)
    page.set_viewport_size({"width": 1440, "height": 1000})


def test_reproduce_table1_for_mobilenet_v2_and_find_the_same_figures_on_compare(fresh_server, page, screenshots):
    page.goto(f"{fresh_server}/tables")
    page.locator("h1", has_text="Table 1 & 2").wait_for()
    page.locator('[data-testid="stDataFrame"]').first.wait_for()

    # Published cells in the browser are the cells optlib.analysis.tables.display gives (checked against the CSVs).
    expected = tables.display(tables.table1_comparison(report.frame([])))
    shown = grid(page, 0, lambda rows: len(rows) == 4)
    assert len(shown) == 4
    for cells, row in zip(shown, expected.to_dict("records")):
        assert cells == {column: row[column] for column in cells}, cells

    for name in ("MobileNet v1 1.0 224 (mobilenet_v1)", "Inception v3 (inception_v3)",
                 "ResNet v2 101 (resnet_v2_101)"):
        page.get_by_role("button", name=f"Remove {name}").click()
        page.wait_for_timeout(500)
    run = page.get_by_role("button", name="Reproduce Table 1 for 1 architecture")
    run.wait_for()
    assert not page.get_by_role("checkbox", name="Include quantization-aware training (QAT)").is_checked()
    page.get_by_text("2 conversions (1 architecture × 2 schemes)").wait_for()
    page.get_by_text("size and latency only").first.wait_for()
    run.click()
    page.get_by_text("Progress", exact=True).first.wait_for()
    page.get_by_text("All 2 conversions finished").wait_for(timeout=REPRODUCE_BUDGET_S * 1000)

    ratios = page.locator(".st-key-tables_ratios_mobilenet_v2")
    ratios.wait_for()
    size_reduction = float(ratios.locator('[data-testid="stMetricValue"]').first.inner_text().rstrip("×"))
    assert size_reduction > 3.5
    expect(ratios).to_contain_text("untrained architecture (no ImageNet weights): size and latency only")
    local = local_rows(page, 0)
    assert [row["Model"] for row in local] == ["Mobilenet-v2-1-224"] and local[0]["Top-1 (original)"] == ""
    # While the page reruns after the sweep, the progress view's chart can still be beside the three.
    settle(page)
    expect(page.locator(".js-plotly-plot")).to_have_count(3, timeout=30_000)
    # The chart is redrawn with this machine's figures after the published ones: wait for them.
    page.wait_for_function(f"() => ({TRACES})()[0].some(t => t.name === 'This machine · float32 (original)' "
                           "&& t.x.some(v => v !== null))")
    figure = page.evaluate(TRACES)[0]
    float32_mb = [v for t in figure if t["name"] == "This machine · float32 (original)" and t["xaxis"] == "x"
                  for v in t["x"] if v is not None]
    int8_mb = [v for t in figure if t["name"] == "This machine · int8 (post-training quantized)"
               and t["xaxis"] == "x" for v in t["x"] if v is not None]
    assert len(float32_mb) == len(int8_mb) == 1
    assert round(float32_mb[0] / int8_mb[0], 2) == size_reduction

    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").first.click()
    csv = download.value.path().read_text()
    assert csv.splitlines()[0].startswith("Model,Source,") and "FP32/INT8 latency" in csv.splitlines()[0]
    assert f"{size_reduction:.2f}" in csv and "N/A" in csv

    # Table 2 for the current model (the built-in digits CNN): run the three schemes from the page.
    page.get_by_role("button", name="Run float32, int8, int16x8 on digits_cnn").click()
    page.get_by_text("results of this model are in the store").wait_for(timeout=REPRODUCE_BUDGET_S * 1000)
    mine = local_rows(page, 1)
    assert [row["Model"] for row in mine] == ["digits_cnn on digits"]
    assert float(mine[0]["Accuracy (float32 activations)"]) > 0.9
    expected = tables.display(tables.table2_comparison(report.frame([])))
    for cells, row in zip(grid(page, 1, lambda rows: len(rows) == 7), expected.to_dict("records")):
        assert cells == {column: row[column] for column in cells}, cells
    page.locator(".js-plotly-plot").nth(2).wait_for()
    shoot(page, screenshots / "tables.png", 4000)

    open_page(page, "Compare")
    page.locator(".js-plotly-plot").nth(4).wait_for()
    # Compare opens on the current model (digits_cnn): add every model.
    page.locator('[data-testid="stMultiSelect"]').first.get_by_role("button", name="Clear all").click(
        no_wait_after=True)
    page.get_by_text("5 finished runs shown").wait_for()
    page.wait_for_function(f"() => ({TRACES})()[2].filter(t => t.name === 'Raw .tflite').length === 2")
    # Table 1 is one table per model (digits_cnn's first, then mobilenet_v2's) under short headers.
    compare = {row["Scheme"]: row for row in grid(page, 1, lambda rows: len(rows) == 2)}
    assert float(compare["float32"]["Size MB"]) == pytest.approx(float32_mb[0], abs=0.005)
    assert float(compare["int8"]["Smaller"].rstrip("×")) == pytest.approx(size_reduction, abs=0.005)
    # A click on a header sorts by the figures, not their text: 3.94 MB before 13.92 MB.
    sort_by(page, 1, "Size MB")
    sizes = [float(row["Size MB"]) for row in grid(page, 1, lambda rows: len(rows) == 2)]
    assert sizes == sorted(sizes) and max(sizes) == pytest.approx(float32_mb[0], abs=0.005), sizes
    # The size bars: one panel per model, in the models' order, each with its "Raw .tflite" trace.
    panels = [t for t in page.evaluate(TRACES)[2] if t["name"] == "Raw .tflite"]
    sizes = {(model, scheme): mb for model, panel in zip(("digits_cnn", "mobilenet_v2"), panels)
             for scheme, mb in zip(panel["x"], panel["y"])}
    assert sizes[("mobilenet_v2", "float32")] == float32_mb[0]  # the very same stored figure
