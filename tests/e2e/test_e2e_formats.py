"""In a real browser: a float .tflite (what PyTorch, JAX and ONNX tools end in) uploaded, run, compared and
exported. The file is made here with TensorFlow's converter from a small tf_keras model."""

import re

import pytest
from playwright.sync_api import expect

from test_e2e_dashboard import errors, open_page, title, upload_model
from waits import settle

pytestmark = pytest.mark.e2e
SWEEP_WAIT_S = 600


def upload_on_a_server_of_its_own(page, url, path):
    """Open Model & data on ``url`` (a server with a store of its own: the first-visit tests expect an empty one)
    and upload the model file ``path``."""
    page.goto(url)
    title(page, "Shrink")
    open_page(page, "Model & data")
    page.get_by_text("fit together").wait_for()
    upload_model(page, path)


@pytest.fixture(scope="module")
def float_tflite(tmp_path_factory, tiny_model_path):
    from optlib._keras import tf
    from optlib.inputs import models

    path = tmp_path_factory.mktemp("tflite") / "from_any_framework.tflite"
    model = models.load(models.resolve(str(tiny_model_path)))
    path.write_bytes(tf().lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def test_a_float_tflite_upload_runs_lq_and_compares_and_exports(fresh_server, page, screenshots, float_tflite):
    upload_on_a_server_of_its_own(page, fresh_server, float_tflite)
    page.get_by_text("This model is a float .tflite").wait_for()
    assert errors(page, "").count() == 0
    page.screenshot(path=screenshots / "tflite-model.png")

    open_page(page, "Optimize")
    int8 = page.get_by_role("checkbox", name=re.compile(r"Full integer \(`int8`\)"))
    expect(int8).to_be_disabled()  # the converter needs the Keras model or a SavedModel
    page.get_by_text("Not for a float .tflite").first.wait_for()
    page.locator('[data-testid="stCheckbox"]', has_text="lq_dynamic_int8").click()
    page.screenshot(path=screenshots / "tflite-optimize.png")
    run = page.get_by_role("button", name=re.compile(r"^Run 2 schemes"))
    run.click()
    page.get_by_text("2 of 2 schemes finished").wait_for(timeout=SWEEP_WAIT_S * 1000)
    assert errors(page, "").count() == 0

    open_page(page, "Compare")
    page.locator(".js-plotly-plot").first.wait_for()
    settle(page)
    page.screenshot(path=screenshots / "tflite-compare.png", full_page=True)
    assert page.locator(".js-plotly-plot", has_text="lq_dynamic_int8").count() >= 1  # in a chart's legend

    open_page(page, "Export")
    with page.expect_download() as download:
        page.get_by_role("button", name="Results as CSV").click()
    csv = download.value.path().read_text()
    assert "lq_dynamic_int8" in csv and "from_any_framework.tflite" in csv


@pytest.fixture(scope="module")
def keras3_file(tmp_path_factory, digits_arrays):
    """A small Keras 3 CNN trained for a moment and saved with model.save, as TensorFlow 2.21 users save."""
    from optlib._keras import keras as tf_keras

    tf_keras()
    import keras

    x_train, y_train, _, _ = digits_arrays
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_train[..., None] / 16.0, y_train, epochs=3, verbose=0)
    path = tmp_path_factory.mktemp("keras3") / "keras3_cnn.keras"
    model.save(path)
    return path


def test_a_keras3_upload_runs_a_training_scheme_on_its_rebuild_and_exports(fresh_server, page, screenshots,
                                                                             keras3_file):
    upload_on_a_server_of_its_own(page, fresh_server, keras3_file)
    page.get_by_text("rebuilt layer by layer as a Keras 2 (tf_keras) model").wait_for(timeout=180_000)
    page.get_by_text("fit together").wait_for()
    page.screenshot(path=screenshots / "keras3-model.png", full_page=True)
    assert errors(page, "").count() == 0

    open_page(page, "Optimize")
    page.get_by_role("button", name="Nothing").click()
    settle(page)  # a tick given while "Nothing" still reruns the page can be undone by it
    for scheme in ("(float32)", "(qat)"):
        page.locator('[data-testid="stCheckbox"]', has_text=scheme).click()
        settle(page)
    expect(page.locator('[data-testid="stCheckbox"]', has_text="(qat)").locator("input")).to_be_checked()
    page.screenshot(path=screenshots / "keras3-optimize.png", full_page=True)
    page.get_by_role("button", name=re.compile(r"^Run 2 schemes")).click()
    page.get_by_text("2 of 2 schemes finished").wait_for(timeout=SWEEP_WAIT_S * 1000)
    assert errors(page, "").count() == 0

    open_page(page, "Compare")
    page.locator(".js-plotly-plot").first.wait_for()
    assert page.locator(".js-plotly-plot", has_text="qat").count() >= 1

    open_page(page, "Export")
    with page.expect_download() as download:
        page.get_by_role("button", name="Results as CSV").click()
    csv = download.value.path().read_text()
    assert "keras3_cnn.keras" in csv and ",qat," in csv and "keras3_max_abs_difference" in csv
