"""End to end in a real browser: upload a regression model and its .npz, run, and Compare charts MAE.

Run with ``.venv/bin/python -m pytest tests/e2e/test_e2e_regression.py -m e2e``.
"""

import numpy as np
import pytest
from grids import grid
from waits import settle

pytestmark = pytest.mark.e2e

SWEEP_TIMEOUT_MS = 300_000


def _regression_files(folder):
    """A small MLP trained a few epochs on scikit-learn's diabetes data, and its .npz."""
    from sklearn.datasets import load_diabetes

    from optlib._keras import keras

    k = keras()
    k.utils.set_random_seed(0)
    found = load_diabetes()
    x, y = found.data.astype("float32"), found.target.astype("float32")
    model = k.Sequential([k.layers.Input((10,)), k.layers.Dense(16, activation="relu"), k.layers.Dense(1)])
    model.compile(k.optimizers.Adam(1e-2), "mse")
    model.fit(x[:350], y[:350], epochs=50, verbose=0)
    model.save(folder / "progression.keras", save_format="keras_v3")
    np.savez(folder / "progression.npz", x_train=x[:350], y_train=y[:350], x_test=x[350:], y_test=y[350:])
    return folder / "progression.keras", folder / "progression.npz"


def test_a_regression_upload_runs_and_compare_charts_mae(server, page, screenshots, tmp_path):
    url, _ = server
    model_path, data_path = _regression_files(tmp_path)
    page.goto(url)
    page.locator('[data-testid="stSidebarNavLink"]', has_text="Model & data").click()
    page.locator("h1", has_text="Model & data").wait_for()
    page.get_by_text("Upload a model file").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(model_path))
    page.get_by_text("progression.keras").first.wait_for()
    page.get_by_text("Upload an .npz").click()
    page.get_by_text("x_test alone gives fidelity").wait_for()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').last.set_input_files(str(data_path))
    # Until the upload's rerun ends, the page still shows the default data's summary ("fit together" too).
    page.locator('[data-testid="stMarkdownContainer"]', has_text="Dataset progression.npz").first.wait_for()
    page.get_by_text("fit together").wait_for()
    page.get_by_text("task regression").first.wait_for()  # the summary names the task
    settle(page)
    page.screenshot(path=screenshots / "model_data_regression.png", full_page=True)

    page.locator('[data-testid="stSidebarNavLink"]', has_text="Optimize").click()
    page.get_by_role("button", name="Run 5 schemes").click()
    page.get_by_text("5 of 5 schemes finished").wait_for(timeout=SWEEP_TIMEOUT_MS)

    page.locator('[data-testid="stSidebarNavLink"]', has_text="Compare").click()
    page.locator(".js-plotly-plot").nth(4).wait_for()
    settle(page)
    axis_titles = page.locator(".js-plotly-plot .ytitle").all_text_contents()
    assert "MAE (lower is better)" in axis_titles, axis_titles
    # Table 1 names the metric and gives its value and change, not an empty top-1 column.
    table1 = grid(page, 0, ready=lambda rows: len(rows) >= 5)
    assert "Top-1 accuracy (%)" not in table1[0], table1[0]
    assert {row["Metric"] for row in table1} == {"MAE (lower is better)"}, table1
    assert all(float(row["Value"]) > 0 for row in table1), table1
    page.screenshot(path=screenshots / "compare_regression.png", full_page=True)

    page.locator('[data-testid="stSidebarNavLink"]', has_text="Home").click()
    best = page.locator('[data-testid="stMetric"]', has_text="Lowest MAE")  # the direction in the tile's name
    best.wait_for()
    page.screenshot(path=screenshots / "home_regression.png", full_page=True)
