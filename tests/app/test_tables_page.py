"""The Table 1 & 2 page, driven with AppTest: published cells as printed, reproduction, Table 2, exports.

The slow engine call (``optlib.engine.sweep.run``) is replaced by FakeSweep, which
stores canned rows the way the engine does; the tables and figures are then
built from the store for real.
"""

import threading
from pathlib import Path

import pandas as pd
import pytest
from apphelpers import FAILURE, FakeSweep, put_run, texts, wait_until

from optlib.analysis import report, tables
from optlib.engine import sweep
from optlib.analysis import reference
from optlib.engine.store import Store


@pytest.fixture(autouse=True)
def no_imagenet_weights(tmp_path, monkeypatch):
    """An empty Keras cache: the Table 1 architectures are untrained, as on a machine without downloads."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))


def open_tables(app, state=None):
    return app("tables.py", state=state)


def table1_shown(at):
    return at.dataframe[0].value


def table2_shown(at):
    return at.dataframe[1].value


def published(shown):
    return shown[shown["Source"].str.startswith("Published")].reset_index(drop=True)


def local(shown):
    return shown[shown["Source"].str.startswith("This machine")].reset_index(drop=True)


def reproduce(at, chosen=("mobilenet_v2",), qat=False):
    """Choose architectures, click the button, let the background job finish, draw the page again."""
    at.multiselect(key="tables_models").set_value(list(chosen))
    at.checkbox(key="tables_qat").set_value(qat)
    at.run()
    at.button(key="tables_run_button").click().run()
    at.session_state["tables_job"].wait(60)
    return at.run()


# --- What the page shows ------------------------------------------------------------

def test_the_page_shows_both_tables_figures_and_exports_with_an_empty_store(app, home):
    at = open_tables(app)
    assert not at.exception
    assert not at.error
    assert at.title[0].value == "Table 1 & 2"
    assert [s.value for s in at.subheader] == [
        "Table 1 · Benefits of model quantization for select CNN models",
        "Table 2 · Benefits of model quantization with int16 activations"]
    assert len(at.dataframe) == 2
    assert list(table1_shown(at)["Source"]) == [tables.PUBLISHED] * 4
    assert len(at.get("plotly_chart")) == 3  # Table 1 size and latency, Table 1 ratios, Table 2
    downloads = at.get("download_button")
    assert [d.proto.label for d in downloads] == ["Download CSV", "Download Markdown"] * 2
    assert [Path(d.proto.url).suffix for d in downloads] == [".csv", ".md", ".csv", ".md"]
    assert at.multiselect(key="tables_models").value == list(tables.TABLE1_MODELS)
    assert at.checkbox(key="tables_qat").value is False
    assert at.button(key="tables_run_button").label == "Reproduce Table 1 for 4 architectures"


def test_every_published_cell_shown_equals_the_reference_csv(app, home):
    at = open_tables(app)
    assert not at.exception
    expected1 = published(tables.display(tables.table1_comparison(report.frame([]))))
    expected2 = published(tables.display(tables.table2_comparison(report.frame([]))))
    pd.testing.assert_frame_equal(published(table1_shown(at)), expected1)
    pd.testing.assert_frame_equal(published(table2_shown(at)), expected2)
    # Each cell as written in assets/reference/table1.csv ("0.70" stays "0.70"); an empty cell is the guide's N/A.
    written = pd.read_csv(reference.REFERENCE_DIR / "table1.csv", dtype=str, keep_default_na=False)
    shown1 = published(table1_shown(at))
    assert list(shown1["Model"]) == list(written["model"])
    for column, field in tables.TEXT_COLUMNS.items():
        assert list(shown1[column]) == [cell or reference.NA_LABEL for cell in written[field]], column
    table2 = reference.table2()
    shown2 = published(table2_shown(at))
    assert list(shown2["Model"]) == list(table2["model"])
    assert list(shown2["Accuracy metric type"]) == list(table2["metric"])
    for precision in ("float32", "int8", "int16"):
        assert list(shown2[f"Accuracy ({precision} activations)"]) == list(table2[f"{precision}_text"])
    # As printed, never re-rounded or guessed:
    assert list(shown1["Top-1 (quantization-aware trained)"]) == ["0.70", "0.709", "0.775", "N/A"]
    assert list(shown1["Size original (MB)"]) == ["16.9", "14", "95.7", "178.3"]
    assert list(shown2["Accuracy (int8 activations)"])[-1] == "2.08(0)"


def test_ratio_columns_are_shown_and_exported(app, home):
    at = open_tables(app)
    for column in ("Size reduction (x)", "FP32/INT8 latency", "(INT8-FP32)/FP32 accuracy"):
        assert column in table1_shown(at).columns
    assert {"(INT8-FP32)/FP32", "(INT16-FP32)/FP32"} <= set(table2_shown(at).columns)
    assert published(table1_shown(at)).loc[1, "FP32/INT8 latency"] == f"{89 / 98:.3f}"


def test_the_time_estimate_and_missing_weights_are_stated(app, home):
    at = open_tables(app)
    assert "no earlier run on this machine to estimate mobilenet_v1 float32, mobilenet_v1 int8," in texts(at.markdown)
    assert "8 conversions" in texts(at.markdown)
    assert "size and latency only" in texts(at.caption)
    at.multiselect(key="tables_models").set_value(["mobilenet_v2"]).run()
    at.checkbox(key="tables_qat").check().run()
    assert not at.exception
    assert "3 conversions (1 architecture × 3 schemes)" in texts(at.markdown)
    # With an earlier run of the same architecture and scheme, its measured time is the estimate.
    put_run(Store(), "int8", "mobilenet_v2", "fp", "digits", "dfp", {}, {"total_s": 150.0}, artifact=None)
    at.run()
    shown = texts(at.markdown)
    assert "1 of them took **2 min** in this machine's earlier runs" in shown
    assert "estimate mobilenet_v2 float32, mobilenet_v2 qat from" in shown
    assert "MobileNets take minutes" not in shown  # nothing to go by is said plainly, with no assumed figure
    assert at.button(key="tables_run_button").label == "Reproduce Table 1 for 1 architecture"
    at.multiselect(key="tables_models").set_value([]).run()
    assert "Choose at least one architecture" in texts(at.info)


# --- Reproduce Table 1 -----------------------------------------------------------------

def test_reproducing_table1_runs_in_the_background_and_adds_this_machines_row(app, home, monkeypatch):
    fake = FakeSweep()
    monkeypatch.setattr(sweep, "run", fake)
    at = reproduce(open_tables(app))
    assert not at.exception
    assert [(c["model"], c["data"], c["selection"]) for c in fake.calls] == [("mobilenet_v2", "digits",
                                                                              "float32,int8")]
    assert fake.calls[0]["overrides"] == tables.reproduce_overrides()
    assert "All 2 conversions finished" in texts(at.success)
    shown = table1_shown(at)
    mine = local(shown)
    assert list(mine["Model"]) == ["Mobilenet-v2-1-224"]
    assert list(shown["Model"]).index("Mobilenet-v2-1-224") + 1 == list(shown["Source"]).index(mine.loc[0, "Source"])
    assert mine.loc[0, "Size reduction (x)"] == f"{230_400 / 64_376:.3f}"  # canned float32 / int8 sizes
    assert "QAT not run" in mine.loc[0, "Note"]
    assert mine.loc[0, "Top-1 (original)"] == ""  # digits accuracy is no ImageNet top-1: empty, with a reason
    assert "accuracy needs ImageNet evaluation data" in mine.loc[0, "Note"]
    metrics = {m.label: m for m in at.metric}
    assert metrics["Size reduction"].value == f"{230_400 / 64_376:.2f}×"
    assert metrics["Size reduction"].proto.help == "float32 size ÷ int8 size"
    assert metrics["Accuracy change"].value == "—"  # short enough for a third of a 1024 px page
    assert "not measured here, see the note" in metrics["Accuracy change"].proto.help
    assert f"Size {mine.loc[0, 'Size original (MB)']} MB (float32) → 0.06 MB (int8)" in texts(at.caption)


def test_qat_is_passed_on_and_a_failed_scheme_is_explained(app, home, monkeypatch):
    fake = FakeSweep(fail={"int8"})
    monkeypatch.setattr(sweep, "run", fake)
    at = reproduce(open_tables(app), chosen=("mobilenet_v1", "mobilenet_v2"), qat=True)
    assert not at.exception
    assert [c["selection"] for c in fake.calls] == ["float32,int8,qat"] * 2
    warning = texts(at.warning)
    assert "4 of 6 conversions finished" in warning and FAILURE in warning
    assert set(local(table1_shown(at))["Model"]) == {"Mobilenet-v1-1-224", "Mobilenet-v2-1-224"}
    assert all(mine == "" for mine in local(table1_shown(at))["Size reduction (x)"])  # no int8: no ratio


def test_a_reproduction_survives_a_page_switch_and_blocks_a_second_one(app, home, monkeypatch):
    gate = threading.Event()
    monkeypatch.setattr(sweep, "run", FakeSweep(gate=gate))
    at = open_tables(app)
    at.multiselect(key="tables_models").set_value(["mobilenet_v2"]).run()
    at.button(key="tables_run_button").click().run()
    job = at.session_state["tables_job"]
    # until the first scheme finished (the fake then waits for the gate)
    wait_until(lambda: job.state()[2].get(("mobilenet_v2", "float32"), ("",))[0] == "ok")
    at.run()
    assert not at.exception
    assert at.button(key="tables_run_button").disabled
    assert "MobileNet v2 1.0 224" in texts(at.markdown) and "*ok*" in texts(at.markdown)
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    assert at.session_state["tables_job"].running
    gate.set()
    at.session_state["tables_job"].wait(60)
    at.switch_page("pages/tables.py").run()
    assert not at.exception
    assert at.multiselect(key="tables_models").value == ["mobilenet_v2"]  # the choice is kept too
    assert "All 2 conversions finished" in texts(at.success)
    assert not at.button(key="tables_run_button").disabled
    assert list(local(table1_shown(at))["Model"]) == ["Mobilenet-v2-1-224"]


def test_the_local_row_agrees_with_compare(app, home, monkeypatch):
    monkeypatch.setattr(sweep, "run", FakeSweep())
    at = reproduce(open_tables(app))
    mine = local(table1_shown(at)).loc[0]
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    compare = at.dataframe[0].value
    rows = compare[compare["Model"].eq("mobilenet_v2")].set_index("Scheme")
    assert float(mine["Size original (MB)"]) == pytest.approx(rows.loc["float32", "Size (MB)"], abs=0.05)
    assert float(mine["Size reduction (x)"]) == pytest.approx(
        rows.loc["int8", "Smaller than float32 (×)"], abs=0.005)  # Compare shows it as "3.58×"


# --- Table 2 for the current model -------------------------------------------------------

def test_table2_shows_the_current_model_below_the_published_rows(app, filled_home):
    at = open_tables(app)
    assert not at.exception
    shown = table2_shown(at)
    assert len(published(shown)) == 6
    mine = local(shown)
    assert list(mine["Model"]) == ["digits_cnn on digits"]  # not tiny.keras: only the current model
    assert mine.loc[0, "Accuracy (float32 activations)"] == "0.9750"
    assert mine.loc[0, "Accuracy (int8 activations)"] == "0.9690"
    assert mine.loc[0, "Accuracy (int16 activations)"] == ""
    assert mine.loc[0, "(INT8-FP32)/FP32"] == f"{(0.969 - 0.975) / 0.975:.3f}"
    assert FAILURE in mine.loc[0, "Note"] and "int16x8 failed" in mine.loc[0, "Note"]
    assert at.button(key="tables_t2_run_button").label == "Run int16x8 on digits_cnn"
    assert "int16x8 failed before" in texts(at.caption)


def test_table2_runs_the_missing_schemes_in_the_background(app, home, monkeypatch):
    fake = FakeSweep()
    monkeypatch.setattr(sweep, "run", fake)
    at = open_tables(app)
    assert local(table2_shown(at)).empty
    assert at.button(key="tables_t2_run_button").label == "Run float32, int8, int16x8 on digits_cnn"
    at.button(key="tables_t2_run_button").click().run()
    at.session_state["tables_t2_job"].wait(60)
    at.run()
    assert not at.exception
    assert [(c["model"], c["data"], c["selection"], c["overrides"]) for c in fake.calls] == [
        ("digits_cnn", "digits", "float32,int8,int16x8", {})]
    mine = local(table2_shown(at)).loc[0]
    assert (mine["Accuracy (float32 activations)"], mine["Accuracy (int8 activations)"],
            mine["Accuracy (int16 activations)"]) == ("0.9750", "0.9690", "0.9750")
    assert mine["Note"] == ""
    assert "results of this model are in the store" in texts(at.caption)
    assert not at.get("button") or all(b.key != "tables_t2_run_button" for b in at.button)


def test_table2_for_an_untrained_architecture_says_there_is_no_accuracy(app, home):
    at = open_tables(app, state={"app_model_ref": "mobilenet_v2"})
    assert not at.exception
    assert "no trained weights" in texts(at.info)
    assert all(b.key != "tables_t2_run_button" for b in at.button)


def test_table2_with_a_missing_model_file_is_an_error_and_table1_still_shows(app, home, tmp_path):
    at = open_tables(app, state={"app_model_ref": str(tmp_path / "gone.keras")})
    assert not at.exception
    assert "does not exist" in texts(at.error)
    assert len(at.dataframe) == 1 and len(at.get("plotly_chart")) == 2
