"""Table 1 / Table 2 comparisons: published cells as the guide prints them; local rows and ratios are right."""

import math
from pathlib import Path

import pandas as pd
import pytest

from optlib.analysis import report, tables
from optlib.views import table_charts

# The published rows as the TensorFlow Lite guide prints them, written out here on purpose: the
# shown cells must be the printed text ("0.70", "14", "N/A"), never re-rounded or guessed.
# (test_reference_sources.py checks assets/reference/*.csv against the guide itself.)
PRINTED_TABLE1 = {
    "Mobilenet-v1-1-224": ["0.709", "0.657", "0.70", "124", "112", "64", "16.9", "4.3"],
    "Mobilenet-v2-1-224": ["0.719", "0.637", "0.709", "89", "98", "54", "14", "3.6"],
    "Inception_v3": ["0.78", "0.772", "0.775", "1130", "845", "543", "95.7", "23.9"],
    "Resnet_v2_101": ["0.770", "0.768", "N/A", "3973", "2868", "N/A", "178.3", "44.9"],
}
PRINTED_TABLE2 = {
    "Wav2letter": ["WER", "6.7%", "7.7%", "7.2%"],
    "DeepSpeech 0.5.1 (unrolled)": ["CER", "6.13%", "43.67%", "6.52%"],
    "YoloV3": ["mAP(IOU=0.5)", "0.577", "0.563", "0.574"],
    "MobileNetV1": ["Top-1 Accuracy", "0.7062", "0.694", "0.6936"],
    "MobileNetV2": ["Top-1 Accuracy", "0.718", "0.7126", "0.7137"],
    "MobileBert": ["F1(Exact match)", "88.81(81.23)", "2.08(0)", "88.73(81.15)"],
}
TABLE2_TEXT = ("Accuracy metric type", "Accuracy (float32 activations)", "Accuracy (int8 activations)",
               "Accuracy (int16 activations)")


def _row(scheme, model="mobilenet_v2", dataset="digits", size=1e6, latency=10.0, accuracy=None, trained=False,
         run_id=1, status="ok"):
    return {"id": run_id, "scheme": scheme, "status": status, "model": model, "dataset": dataset,
            "size_bytes": int(size), "gzip_bytes": int(size * 0.9), "accuracy": accuracy, "trained": trained,
            "threads": 1, "latency_ms": {"median": latency, "p90": latency, "std": 0.1}}


@pytest.fixture
def local():
    return report.frame([_row("float32", size=13_922_088, latency=8.0, run_id=1),
                         _row("int8", size=3_942_064, latency=4.0, run_id=2)])


def test_every_published_table1_cell_shown_is_the_printed_text(local):
    shown = tables.display(tables.table1_comparison(local))
    published = shown[shown["Source"] == tables.PUBLISHED]
    assert {row["Model"]: [row[c] for c in tables.TEXT_COLUMNS] for row in published.to_dict("records")} \
        == PRINTED_TABLE1
    assert list(published["Model"]) == list(PRINTED_TABLE1)  # in the guide's order


def test_every_published_table2_cell_shown_is_the_printed_text():
    shown = tables.display(tables.table2_comparison(pd.DataFrame()))
    assert {row["Model"]: [row[c] for c in TABLE2_TEXT] for row in shown.to_dict("records")} == PRINTED_TABLE2
    assert list(shown["Model"]) == list(PRINTED_TABLE2)


def test_local_table1_row_has_measured_figures_ratios_and_says_why_accuracy_is_empty(local):
    table = tables.table1_comparison(local)
    mine = table[table["Source"].str.startswith("This machine")].iloc[0]
    assert mine["Model"] == "Mobilenet-v2-1-224"
    assert mine["Size original (MB)"] == pytest.approx(13.922088)
    assert mine["Size reduction (x)"] == pytest.approx(13_922_088 / 3_942_064)
    assert mine["FP32/INT8 latency"] == pytest.approx(2.0)
    assert math.isnan(mine["(INT8-FP32)/FP32 accuracy"]) and pd.isna(mine["Top-1 (original)"])
    assert "size and latency only" in mine["Note"] and "QAT not run" in mine["Note"]
    published = table[(table["Source"] == tables.PUBLISHED) & (table["zoo_model"] == "mobilenet_v2")].iloc[0]
    assert published["FP32/INT8 latency"] == pytest.approx(89 / 98)
    assert published["(INT8-FP32)/FP32 accuracy"] == pytest.approx((0.637 - 0.719) / 0.719)
    assert list(table["zoo_model"]).index("mobilenet_v2") + 1 == list(table["Source"]).index(mine["Source"])


def test_table2_for_my_model_and_exports():
    df = report.frame([_row("float32", "tiny", accuracy=0.9, trained=True, run_id=1),
                       _row("int8", "tiny", accuracy=0.81, trained=True, run_id=2),
                       _row("int16x8", "tiny", accuracy=0.88, trained=True, run_id=3)])
    table = tables.table2_comparison(df, "tiny")
    mine = table.iloc[-1]
    assert mine["Model"] == "tiny on digits" and mine["Accuracy (int8 activations)"] == "0.8100"
    assert mine["(INT8-FP32)/FP32"] == pytest.approx(-0.1)
    assert mine["(INT16-FP32)/FP32"] == pytest.approx((0.88 - 0.9) / 0.9)
    markdown, csv = tables.to_markdown(table), tables.to_csv(table)
    assert "| (INT8-FP32)/FP32 |" in markdown and "| -0.100 |" in markdown
    assert csv.splitlines()[0].endswith("(INT8-FP32)/FP32,(INT16-FP32)/FP32,Note")
    t1 = tables.to_markdown(tables.table1_comparison(df))
    assert "FP32/INT8 latency" in t1 and "| 0.70 |" in t1 and "| N/A |" in t1


# --- Planning a reproduction -------------------------------------------------------------

def test_plan_table1_lists_one_job_per_architecture_and_scheme(tmp_path, monkeypatch):
    from optlib.errors import InputError

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    jobs = tables.plan_table1(["mobilenet_v2", "inception_v3"], include_qat=True)
    assert [(m, s) for m, s, _ in jobs] == [("mobilenet_v2", "float32"), ("mobilenet_v2", "int8"),
                                            ("mobilenet_v2", "qat"), ("inception_v3", "float32"),
                                            ("inception_v3", "int8"), ("inception_v3", "qat")]
    assert len({key for _, _, key in jobs}) == 6
    assert [s for _, s, _ in tables.plan_table1(["mobilenet_v2"])] == ["float32", "int8"]
    with pytest.raises(InputError, match="Unknown model"):
        tables.plan_table1(["mobilenet_v9"])


def test_expected_time_comes_from_this_machines_earlier_runs(tmp_path):
    from types import SimpleNamespace

    from optlib.engine.job import Inputs, Result, Spec
    from optlib.engine.store import Store

    store = Store(tmp_path / "r.sqlite")
    for model, scheme, seconds, status in [("mobilenet_v2", "float32", 20, "ok"), ("mobilenet_v2", "float32", 40, "ok"),
                                           ("mobilenet_v2", "int8", 50, "ok"), ("inception_v3", "int8", 999, "failed")]:
        inputs = Inputs(SimpleNamespace(name=model, fingerprint="fp"), SimpleNamespace(name="digits", fingerprint="dfp"))
        spec = Spec(0, scheme, {}, f"k{seconds}")
        store.finish(store.start(inputs, spec, "host", 1), Result(spec, status, metrics={"total_s": seconds}
                                                                  if status == "ok" else {}))
    jobs = [("mobilenet_v2", "float32"), ("mobilenet_v2", "int8"), ("inception_v3", "int8")]
    assert tables.expected_seconds(jobs, store) == (30 + 50, [("inception_v3", "int8")])  # median of 20 and 40
    assert tables.expected_seconds([], store) == (0, [])


def test_weights_are_found_only_in_the_keras_cache(tmp_path, monkeypatch):
    from optlib.inputs import models

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert not tables.weights_found("mobilenet_v2")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / models.ZOO["mobilenet_v2"].weights_file).write_bytes(b"h5")
    assert tables.weights_found("mobilenet_v2") and not tables.weights_found("inception_v3")


# --- Table 2 notes --------------------------------------------------------------------------

def test_table2_notes_say_failed_not_run_or_untrained():
    df = report.frame([_row("float32", "tiny", accuracy=0.9, trained=True, run_id=1),
                       {**_row("int8", "tiny", run_id=2, status="failed"), "error": "RuntimeError: boom"},
                       _row("float32", "mobilenet_v2", run_id=3), _row("int8", "mobilenet_v2", run_id=4),
                       _row("int16x8", "mobilenet_v2", run_id=5)])
    shown = tables.display(tables.table2_comparison(df))
    tiny = shown[shown["Model"] == "tiny on digits"].iloc[0]
    assert tiny["Note"] == "int8 failed: RuntimeError: boom; int16x8 not run"
    assert tiny["Accuracy (int8 activations)"] == "" and tiny["(INT8-FP32)/FP32"] == ""
    untrained = shown[shown["Model"] == "mobilenet_v2 on digits"].iloc[0]
    assert untrained["Note"].startswith("no accuracy: untrained model")
    assert tables.table2_comparison(df, "tiny", "digits")["Model"].iloc[-1] == "tiny on digits"
    assert len(tables.table2_comparison(df, "tiny", "other data")) == 6  # published rows only


# --- Figures --------------------------------------------------------------------------------

def _bars(fig):
    return [trace for trace in fig.data if trace.type == "bar"]


def test_table1_figure_labels_published_and_local_bars_and_prints_published_cells(local):
    table = tables.table1_comparison(local)
    shown = tables.display(table)
    fig = table_charts.table1_figure(table)
    names = [trace.name for trace in _bars(fig)]
    assert "Published (Pixel 2) · float32 (original)" in names
    assert "This machine · int8 (post-training quantized)" in names
    size = next(t for t in _bars(fig) if t.name == "Published (Pixel 2) · float32 (original)" and t.xaxis == "x")
    assert [t for t in size.text if t] == list(shown[shown["Source"] == tables.PUBLISHED]["Size original (MB)"])
    assert list(size.y[1]).count("Published (Pixel 2)") == 4 and "This machine" in list(size.y[1])
    mine = next(t for t in _bars(fig) if t.name == "This machine · float32 (original)" and t.xaxis == "x")
    assert [v for v in mine.x if v is not None] == pytest.approx([13.922088])
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "log"
    assert "Pixel 2, single big core CPU" in fig.layout.title.subtitle.text
    assert mine.marker.pattern.shape == "" and size.marker.pattern.shape == "/"  # published hatched


def test_table1_figure_fits_half_of_a_1024_px_window(local):
    fig = table_charts.table1_figure(tables.table1_comparison(local))
    note = fig.layout.title.subtitle.text
    assert "<br>" in note and all(len(line) <= 90 for line in note.split("<br>"))  # wrapped, not cut off
    latency_ticks = list(fig.layout.xaxis2.tickvals)  # 4.66 ms here to 3,973 ms on a Pixel 2: 4 decades
    assert latency_ticks == [10 ** e for e in range(0, 4 + 1)]  # powers of ten only, no 2 and 5 between
    assert list(fig.layout.xaxis.tickvals) == [1, 10, 100, 1000]  # 3.6 MB to 178 MB
    assert table_charts._log_ticks([3.0, 60.0]) == [1, 2, 5, 10, 20, 50, 100, 200, 500]  # two decades: room for 2, 5


def test_table1_ratio_figure_compares_the_ratios_of_both_sources(local):
    table = tables.table1_comparison(local)
    fig = table_charts.table1_ratio_figure(table)
    assert {t.name for t in _bars(fig)} == {tables.PUBLISHED, tables.local_source(1)}
    size = {t.name: dict(zip(t.y, t.x)) for t in _bars(fig) if t.xaxis == "x"}
    speed = {t.name: dict(zip(t.y, t.x)) for t in _bars(fig) if t.xaxis == "x2"}
    assert size[tables.local_source(1)]["Mobilenet-v2-1-224"] == pytest.approx(13_922_088 / 3_942_064)
    assert size[tables.local_source(1)]["Inception_v3"] is None  # not measured here: no bar
    assert speed[tables.PUBLISHED]["Mobilenet-v2-1-224"] == pytest.approx(89 / 98)
    assert "No accuracy change from this machine: untrained architecture" in fig.layout.title.subtitle.text


def test_table1_figures_without_local_rows_say_so():
    table = tables.table1_comparison(report.frame([]))
    for fig in (table_charts.table1_figure(table), table_charts.table1_ratio_figure(table)):
        assert "No row from this machine yet" in fig.layout.title.subtitle.text
        assert all(not t.name.startswith("This machine") for t in _bars(fig))


def test_table2_figure_has_one_panel_per_row_with_the_published_text():
    df = report.frame([_row("float32", "tiny", accuracy=0.9, trained=True, run_id=1),
                       _row("int8", "tiny", accuracy=0.81, trained=True, run_id=2)])
    table = tables.table2_comparison(df, "tiny")
    fig = table_charts.table2_figure(table)
    panels = [t for t in _bars(fig) if t.showlegend is False]
    assert len(panels) == 7  # six published models and tiny on digits
    wav2letter = panels[0]
    assert list(wav2letter.text) == ["6.7%", "7.7%", "7.2%"] and list(wav2letter.y) == [6.7, 7.7, 7.2]
    assert list(panels[5].text) == ["88.81(81.23)", "2.08(0)", "88.73(81.15)"]
    assert list(panels[6].y) == [0.9, 0.81, None] and panels[6].marker.pattern.shape == ""
    titles = [a.text for a in fig.layout.annotations]
    assert any("tiny on digits" in t and "This machine" in t for t in titles)
    assert any("WER (lower is better)" in t for t in titles)


def test_figures_do_not_import_streamlit():
    import subprocess
    import sys

    code = ("import sys\nfrom optlib.analysis import report, tables\nfrom optlib.views import table_charts\n"
            "table_charts.table1_figure(tables.table1_comparison(report.frame([])))\n"
            "table_charts.table2_figure(tables.table2_comparison(report.frame([])))\n"
            "print('streamlit' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.split() == ["False", "False"]
