"""In a real browser: a float .tflite (what PyTorch, JAX and ONNX tools end in) uploaded, run, compared and
exported. The file is made here with TensorFlow's converter from a small tf_keras model."""

import re

import pytest

from test_e2e_dashboard import errors, open_page, title, upload_model

pytestmark = pytest.mark.e2e
SWEEP_WAIT_S = 600


@pytest.fixture(scope="module")
def float_tflite(tmp_path_factory, tiny_model_path):
    from optlib._keras import tf
    from optlib.inputs import models

    path = tmp_path_factory.mktemp("tflite") / "from_any_framework.tflite"
    model = models.load(models.resolve(str(tiny_model_path)))
    path.write_bytes(tf().lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def test_a_float_tflite_upload_runs_lq_and_compares_and_exports(server, page, screenshots, float_tflite):
    from playwright.sync_api import expect

    url, _ = server
    page.goto(url)
    title(page, "Shrink")
    open_page(page, "Model & data")
    page.get_by_text("fit together").wait_for()
    upload_model(page, float_tflite)
    page.get_by_text("This model is a float .tflite").wait_for()
    assert errors(page, "").count() == 0
    page.screenshot(path=screenshots / "tflite-model.png")

    open_page(page, "Optimize")
    int8 = page.get_by_role("checkbox", name=re.compile(r"Full integer \(`int8`\)"))
    expect(int8).to_be_disabled()  # the converter needs the Keras model or a SavedModel
    page.get_by_text("Not for this model: needs a Keras model to fine-tune").first.wait_for()
    page.get_by_text("lq_dynamic_int8", exact=True).click()  # the box names the backend; the label, the recipe
    run = page.get_by_role("button", name=re.compile(r"^Run 2 schemes"))
    run.click()
    page.get_by_text("2 of 2 schemes finished").wait_for(timeout=SWEEP_WAIT_S * 1000)
    assert errors(page, "").count() == 0

    open_page(page, "Compare")
    page.locator(".js-plotly-plot").first.wait_for()
    table = page.locator('[data-testid="stDataFrame"]').first.inner_text()
    assert "lq_dynamic_int8" in table or "dynamic int8" in table

    open_page(page, "Export")
    with page.expect_download() as download:
        page.get_by_role("button", name="Results as CSV").click()
    csv = download.value.path().read_text()
    assert "lq_dynamic_int8" in csv and "from_any_framework.tflite" in csv
