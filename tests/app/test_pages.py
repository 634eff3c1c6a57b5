"""Every page, driven with AppTest: no exception, and the elements a person relies on."""

import json
import subprocess
import sys
import threading

import apphelpers
import pytest
from apphelpers import APP, FAILURE, PTQ, ROOT, FakeSweep, texts, wait_until

from optlib.engine import schemes, sweep
from optlib.errors import InputError

PAGES = ("home.py", "model_data.py", "optimize.py", "compare.py", "export.py")


def test_home_page_explains_the_flow_with_an_empty_store(app, home):
    at = app()
    assert not at.exception
    assert "TensorFlow Lite" in at.title[0].value
    assert [s.value for s in at.subheader] == ["Three steps", "Latest results"]
    assert "No results yet" in texts(at.info)
    assert "one click on Run (no earlier runs on this machine to estimate from)" in texts(at.caption)
    assert "minute" not in texts(at.caption)  # no assumed figure
    sidebar = texts(at.sidebar.markdown)
    assert "digits_cnn" in sidebar and "digits" in sidebar and str(home / "results.sqlite") in sidebar


def test_home_page_shows_the_latest_results(app, filled_home):
    at = app()
    assert not at.exception
    assert not at.info
    assert len(at.metric) == 3
    assert at.metric[0].value == "64.4 kB"  # tiny.keras int8, 64,376 bytes: decimal kB, as everywhere
    assert at.dataframe and "scheme" in at.dataframe[0].value.columns
    assert "9 stored runs" in texts(at.sidebar.caption)


def test_home_page_estimates_the_default_run_from_earlier_runs(app, filled_home):
    at = app()
    assert not at.exception
    # Four of the five defaults finished before on the built-in model (1.5 s each, canned); int16x8 failed.
    assert ("one click on Run (about 6.0 s for float32, float16, dynamic, int8 on this machine, from earlier runs "
            "of digits_cnn; no earlier runs of int16x8 to estimate from). Add the time to start TensorFlow and load "
            "the model.") in texts(at.caption)


def test_home_page_does_not_import_tensorflow(home):
    code = ("import sys\nfrom streamlit.testing.v1 import AppTest\n"
            f"at = AppTest.from_file({str(APP)!r}, default_timeout=60)\nat.run()\n"
            "assert not at.exception, at.exception\n"
            "print('tensorflow' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_and_has_a_title(app, filled_home, page):
    # AppTest drops the router's sidebar after switch_page; the e2e test checks it on every page.
    at = app(page)
    assert not at.exception
    assert at.title


# --- Optimize --------------------------------------------------------------------

def run_sweep(at):
    """Click Run, let the background sweep finish, and draw the page again."""
    at.button(key="optimize_run_button").click().run()
    at.session_state["optimize_job"].wait(60)
    return at.run()


def test_optimize_defaults_are_the_built_in_model_and_five_post_training_schemes(app, home):
    at = app("optimize.py")
    assert not at.exception
    assert "digits_cnn" in texts(at.markdown) and "digits" in texts(at.markdown)
    checked = [name for name in schemes.names() if at.checkbox(key=f"optimize_scheme_{name}").value]
    assert checked == list(PTQ)
    assert at.button(key="optimize_run_button").label == "Run 5 schemes"


def test_optimize_run_shows_progress_status_and_results(app, home, monkeypatch):
    fake = FakeSweep(fail={"int16x8"})
    monkeypatch.setattr(sweep, "run", fake)
    at = run_sweep(app("optimize.py"))
    assert not at.exception
    assert fake.calls == [{"model": "digits_cnn", "data": "digits", "selection": ",".join(PTQ), "overrides": {},
                           "recompute": False, "trusted": False, "budget_s": None}]
    statuses = texts(at.markdown)
    for name in ("float32", "float16", "dynamic", "int8"):
        assert f"**{name}**" in statuses
    # The failing scheme says why in words (optlib.analysis.failures), the rest finished.
    assert "*failed*" in statuses and "TensorFlow Lite refused" in statuses and FAILURE not in statuses
    assert "64.4 kB" in statuses  # int8's 64,376 bytes in decimal kB (1024-based it read 62.9)
    assert "4 of 5 schemes finished" in texts(at.warning)
    table = at.dataframe[-1].value
    assert list(table["scheme"]) == list(PTQ)
    assert any(reason.startswith("TensorFlow Lite refused") for reason in table["error"])
    codes = [code.value for code in at.code if code.language == "python"]  # not the engine's raw message
    assert len(codes) == 4 and all("tf.lite.TFLiteConverter" in code for code in codes)


FALLBACK = "ValueError: only single-input models are timed on CompiledModel"


def timed_on_the_interpreter(monkeypatch, scheme="int8"):
    """Canned runs whose ``scheme`` was timed on the Interpreter, as measure.latency records a fallback."""
    canned = apphelpers.canned_metrics

    def metrics(name):
        made = canned(name)
        if name == scheme:
            made["latency_ms"].update(runtime="LiteRT Interpreter (XNNPACK)", fallback_reason=FALLBACK)
        else:
            made["latency_ms"].update(runtime="LiteRT CompiledModel (CPU)", fallback_reason=None)
        return made

    monkeypatch.setattr(apphelpers, "canned_metrics", metrics)


def test_optimize_status_says_which_scheme_the_interpreter_timed_and_why(app, home, monkeypatch):
    timed_on_the_interpreter(monkeypatch)
    monkeypatch.setattr(sweep, "run", FakeSweep())
    at = run_sweep(app("optimize.py"))
    assert not at.exception
    lines = [line for line in texts(at.markdown).splitlines() if "only single-input models are timed" in line]
    assert len(lines) == 1 and "**int8**" in lines[0] and FALLBACK not in lines[0]  # in words; the raw one:
    assert FALLBACK in texts(next(e for e in at.expander if e.label.startswith("The engine's own")).code)
    assert "LiteRT Interpreter (XNNPACK)" in lines[0]


def test_optimize_results_survive_a_page_switch(app, home, monkeypatch):
    monkeypatch.setattr(sweep, "run", FakeSweep())
    at = run_sweep(app("optimize.py"))
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    at.switch_page("pages/optimize.py").run()
    assert not at.exception
    assert "5 of 5 schemes finished" in texts(at.success)
    assert at.checkbox(key="optimize_scheme_int8").value


def run_until_float32_is_done(app, monkeypatch, gate, selection=None):
    """Press Run on Optimize with a stand-in sweep that waits for ``gate`` after each scheme; return once
    float32 has finished: (the AppTest, the running job)."""
    monkeypatch.setattr(sweep, "run", FakeSweep(gate=gate))
    at = app("optimize.py")
    if selection:
        at.button(key="optimize_none_button").click().run()
        for name in selection:
            at.checkbox(key=f"optimize_scheme_{name}").check()
        at.run()
    at.button(key="optimize_run_button").click().run()
    job = at.session_state["optimize_job"]
    wait_until(lambda: "float32" in job.state()[2] and job.state()[2]["float32"][0] == "ok")
    return at, job


def test_a_running_sweep_goes_on_while_the_person_looks_elsewhere(app, home, monkeypatch):
    gate = threading.Event()
    at, job = run_until_float32_is_done(app, monkeypatch, gate)
    at.run()
    assert not at.exception
    assert "Progress" in texts(at.subheader)
    assert at.button(key="optimize_run_button").disabled
    assert "float32" in texts(at.markdown) and "*ok*" in texts(at.markdown)  # the first scheme finished
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    assert at.session_state["optimize_job"].running
    gate.set()
    at.session_state["optimize_job"].wait(60)
    at.switch_page("pages/optimize.py").run()
    assert not at.exception
    assert "Last run" in texts(at.subheader)
    assert "5 of 5 schemes finished" in texts(at.success)
    assert not at.button(key="optimize_run_button").disabled


def test_optimize_passes_changed_settings_only(app, home, monkeypatch):
    fake = FakeSweep()
    monkeypatch.setattr(sweep, "run", fake)
    at = app("optimize.py")
    at.button(key="optimize_all_button").click().run()
    assert at.button(key="optimize_run_button").label == f"Run {len(schemes.names())} schemes"
    at.number_input(key="optimize_param_epochs").set_value(1)
    at.number_input(key="optimize_param_runs").set_value(10)
    at.selectbox(key="optimize_param_centroids").set_value("linear")
    at.checkbox(key="optimize_recompute").check()
    at.number_input(key="optimize_budget").set_value(120)
    run_sweep(at)
    assert not at.exception
    call = fake.calls[-1]
    assert call["selection"] == ",".join(schemes.names())
    assert call["overrides"] == {"epochs": 1, "runs": 10, "centroids": "linear"}
    assert call["recompute"] is True and call["budget_s"] == 120


def test_optimize_estimates_fine_tuning_from_earlier_runs_only(app, filled_home):
    at = app("optimize.py")
    at.button(key="optimize_none_button").click().run()
    at.checkbox(key="optimize_scheme_qat").check()
    at.checkbox(key="optimize_recompute").check().run()
    assert not at.exception
    assert "1 of them fine-tunes the model first (about 1.5 s on this machine, from earlier runs of digits_cnn)" in texts(
        at.caption)
    at.checkbox(key="optimize_scheme_qat").uncheck()
    at.checkbox(key="optimize_scheme_cluster").check().run()
    assert "1 of them fine-tunes the model first (no earlier runs on this machine to estimate from)" in texts(at.caption)
    assert "seconds each" not in texts(at.caption)  # no assumed figure
    at.checkbox(key="optimize_recompute").uncheck()
    at.checkbox(key="optimize_scheme_qat").check().run()  # qat is in the store: served, not fine-tuned again
    assert "1 of them already in the store" in texts(at.caption) and "1 of them fine-tunes the model first (no earlier" in texts(
        at.caption)


def test_optimize_with_nothing_selected_asks_for_a_scheme(app, home):
    at = app("optimize.py")
    at.button(key="optimize_none_button").click().run()
    assert not at.exception
    assert "Select at least one scheme" in texts(at.info)
    assert not [b for b in at.button if b.key == "optimize_run_button"]


def test_optimize_shows_an_unusable_model_as_an_error(app, home, monkeypatch):
    monkeypatch.setattr(sweep, "run", FakeSweep(error=InputError("'x.keras' has a Lambda layer; it is refused.")))
    at = run_sweep(app("optimize.py"))
    assert not at.exception
    assert "Lambda layer" in texts(at.error)


def test_optimize_reports_a_missing_model_before_running(app, home, tmp_path):
    at = app("optimize.py", state={"app_model_ref": str(tmp_path / "gone.keras")})
    assert not at.exception
    assert "does not exist" in texts(at.error)


# --- Compare ----------------------------------------------------------------------

def test_compare_with_an_empty_store_points_to_optimize(app, home):
    at = app("compare.py")
    assert not at.exception
    assert "No stored results" in texts(at.info)


def test_compare_draws_tables_and_charts(app, filled_home):
    at = app("compare.py")
    assert not at.exception
    assert len(at.get("plotly_chart")) == 5  # two scatters, two bar charts, table 2
    table1, table2 = at.dataframe[0].value, at.dataframe[1].value
    assert "Δ top-1 vs float32 (points)" in table1.columns
    assert set(table1["Scheme"]) == {"float32", "float16", "dynamic", "int8", "qat", "prune"}
    assert any("int16" in column for column in table2.columns)
    notes = at.expander[0]
    assert notes.label == ("Why is this slower? Why didn't this shrink? — no smaller on disk, only compressed: "
                           "prune (1 note)")  # one line; the notes themselves one click away
    unfinished = next(e for e in at.expander if e.label.endswith("did not finish"))
    assert unfinished.label == "1 run did not finish"
    failed = unfinished.dataframe[0].value
    assert list(failed["scheme"]) == ["int16x8"] and failed["error"].iloc[0].startswith("TensorFlow Lite refused")
    assert at.code and "import tensorflow as tf" in at.code[0].value


def test_compare_filters_by_model_and_scheme(app, filled_home):
    at = app("compare.py")
    at.multiselect(key="compare_filter_model").set_value(["tiny.keras"]).run()
    assert not at.exception
    assert set(at.dataframe[0].value["Model"]) == {"tiny.keras"}
    at.multiselect(key="compare_filter_model").set_value([])
    at.multiselect(key="compare_filter_scheme").set_value(["int8"]).run()
    assert not at.exception
    assert set(at.dataframe[0].value["Scheme"]) == {"int8"}
    at.radio(key="compare_size_axis").set_value("gzip_mb").run()
    assert not at.exception


def test_compare_shows_a_failed_run_with_its_reason(app, filled_home):
    from optlib.engine.store import Store

    failed = Store().rows(status="failed")[0]["id"]
    at = app("compare.py")
    at.selectbox(key="compare_run").set_value(failed).run()
    assert not at.exception
    assert "TensorFlow Lite refused" in texts(at.error)  # in words; the raw message one click away
    assert FAILURE in texts(next(e for e in at.expander if e.label == "The engine's own message").code)


def test_compare_run_details_say_which_runtime_timed_the_latency(app, home, monkeypatch):
    from optlib.engine.store import Store

    timed_on_the_interpreter(monkeypatch)
    store = Store()
    compiled = apphelpers.store_canned(store, "float32")["id"]
    interpreted = apphelpers.store_canned(store, "int8")["id"]
    at = app("compare.py")
    at.selectbox(key="compare_run").set_value(compiled).run()
    assert not at.exception
    assert "Latency timed on LiteRT CompiledModel (CPU)." in texts(at.caption)
    at.selectbox(key="compare_run").set_value(interpreted).run()
    assert not at.exception
    assert ("Latency timed on LiteRT Interpreter (XNNPACK): the model has several inputs, and only single-input "
            "models are timed on LiteRT's CompiledModel." in texts(at.caption))


@pytest.fixture
def unknown_to_codegen():
    """A post-training scheme codegen has no template for, registered for one test and then taken out."""
    entry = schemes.register(schemes.Scheme("int4", "post-training", "Int4 weights", "A scheme codegen does not know.",
                                            "nothing", "optlib.engine.schemes.post_training:build_int4"))
    yield entry
    schemes.unregister(entry.name)


def test_compare_says_when_there_is_no_code_for_a_run(app, home, unknown_to_codegen):
    from optlib.engine.store import Store

    # A finished post-training run without a recorded recipe, of a scheme codegen has no template for.
    store = Store()
    apphelpers.store_canned(store, "float32")
    metrics = {k: v for k, v in apphelpers.canned_metrics("int8").items() if k != "recipe"}
    run_id = apphelpers.put_run(store, "int4", "digits_cnn", "fp", "digits", "digits-fp", metrics=metrics,
                                artifact=None)["id"]
    at = app("compare.py")
    at.selectbox(key="compare_run").set_value(run_id).run()
    assert not at.exception
    assert "No code for this run: Run #" in texts(at.info) and "no code template" in texts(at.info)


def test_compare_on_runs_of_a_real_sweep(app, swept_home, monkeypatch):
    monkeypatch.setenv("OPTLIB_HOME", str(swept_home))
    at = app("compare.py")
    assert not at.exception
    assert len(at.get("plotly_chart")) == 5
    assert set(at.dataframe[0].value["Scheme"]) == {"float32", "int8", "int16x8"}
    table2 = at.dataframe[1].value
    assert table2.iloc[0, 3:6].notna().all()  # float32, int8 and int16x8 each measured


# --- Export -------------------------------------------------------------------------

def test_export_offers_results_models_charts_and_code(app, filled_home):
    at = app("export.py")
    assert not at.exception
    downloads = at.get("download_button")
    assert len(downloads) == 6  # CSV, JSON, .tflite, the run's bundle, chart HTML, code
    assert "Download the bundle (.zip)" in [b.proto.label for b in downloads]
    assert "The optimized `.tflite`, the source model, the code" in texts(at.caption)  # digits_cnn: a zoo model
    assert any(b.proto.label.endswith("(.tflite, 1.0 kB)") for b in downloads)  # the canned 1,004-byte file
    assert at.selectbox(key="export_chart").options
    assert at.code and "tf.lite" in at.code[0].value


def test_export_with_an_empty_store_points_to_optimize(app, home):
    at = app("export.py")
    assert not at.exception
    assert "Nothing to export" in texts(at.info)


def test_a_timed_out_or_failed_rerun_keeps_showing_the_good_result(app, filled_home):
    from optlib.engine.store import Store

    store = Store()
    before = app()
    best_before = before.metric[2].value
    apphelpers.store_canned(store, "qat", fail=True, status="timeout")  # reruns of ok runs, same settings
    apphelpers.store_canned(store, "prune", fail=True)
    at = app()
    assert not at.exception and at.metric[2].value == best_before  # Home's "Most accurate" is unchanged
    at = app("compare.py")
    assert not at.exception
    shown = displayed(at.dataframe[0]).set_index("Scheme")
    assert shown.loc["qat", "Top-1 accuracy (%)"] == f"{100 * apphelpers.CANNED['qat'][0]:.2f}"  # as shown
    assert "prune" in shown.index
    at = app("export.py")
    assert not at.exception
    assert "9 runs (failed ones included" in texts(at.caption)  # the ok results, not the failed reruns
    at = app("compare.py")
    qat = next(r["id"] for r in store.rows(scheme="qat", status="ok"))
    at.selectbox(key="compare_run").set_value(qat).run()
    history = next(e for e in at.expander if e.label.startswith("History"))
    assert history.label == "History: 2 runs of this model, data, scheme and settings"
    assert list(history.dataframe[0].value["Status"]) == ["timeout", "ok"]  # the rerun, then the good run
    assert len(store.rows()) == 11 and {r["status"] for r in store.rows(scheme="qat")} == {"ok", "timeout"}


def test_the_progress_counter_says_how_many_are_done_and_only_grows():
    from optlib.engine.sweep import Progress
    from pages._jobs import SweepJob

    job = SweepJob(selection="float32,qat,int8")
    # Two workers: qat (index 1) starts at once from the back; float32 then int8 finish first.
    for event in [Progress("float32", 0, 3, "starting", 0.0, 0), Progress("qat", 1, 3, "starting", 0.0, 0),
                  Progress("float32", 0, 3, "ok", 1 / 3, 1, "done", {"status": "ok"}),
                  Progress("int8", 2, 3, "running", 0.4, 1, "converting")]:
        job._progress(event)
    fraction, message, states = job.state()
    assert message == "1 of 3 done · int8: converting"
    assert states["float32"][0] == "ok" and states["qat"][0] == "starting"


def test_compare_says_how_many_invokes_the_latency_figure_used(app, filled_home):
    from optlib.engine.store import Store

    run_id = next(r["id"] for r in Store().rows(scheme="int8") if r["model"] == "digits_cnn")
    at = app("compare.py")
    at.selectbox(key="compare_run").set_value(run_id).run()
    assert not at.exception
    # canned: 50 timed and 5 warm-up invokes, as the settings; a real run often times many more
    assert "The latency figure used 50 timed invokes after 5 warm-up invokes" in texts(at.caption)


def test_runs_of_one_scheme_with_other_settings_are_told_apart():
    from pages._results import run_label

    base = {"id": 7, "model": "digits_cnn", "dataset": "digits", "scheme": "int8_selective"}
    one = run_label({**base, "settings": schemes.settings_for("int8_selective")})
    two = run_label({**base, "settings": schemes.settings_for("int8_selective", {"worst_n": 2})})
    assert one == "#7 · digits_cnn · digits · int8_selective" and two == one + " (worst_n=2)"


def test_stop_ends_the_sweep_and_keeps_what_finished(app, home, monkeypatch):
    from optlib.engine.store import Store

    gate = threading.Event()  # never set: the sweep would wait a minute after its first scheme
    at, job = run_until_float32_is_done(app, monkeypatch, gate)
    at.run()
    at.button(key="optimize_stop_button").click().run()
    job.wait(10)
    assert not job.running  # ended at once, not after the gate's minute
    at.run()
    assert not at.exception
    assert "1 of 5 schemes finished" in texts(at.warning) and "Stopped before they finished: float16" in texts(at.warning)
    assert [(r["scheme"], r["status"]) for r in Store().rows()] == [("float32", "ok")]
    assert not at.button(key="optimize_run_button").disabled


def test_a_reload_mid_run_finds_the_sweep_and_its_progress_again(app, home, monkeypatch):
    from streamlit.testing.v1 import AppTest

    gate = threading.Event()
    at, job = run_until_float32_is_done(app, monkeypatch, gate, ("float32", "int8"))
    token = at.query_params["job"]
    assert token == job.token

    reloaded = AppTest.from_file(str(APP), default_timeout=120)  # a new browser session, same address
    reloaded.query_params["job"] = token
    reloaded.run()
    reloaded.switch_page("pages/optimize.py").run()
    assert not reloaded.exception
    assert reloaded.session_state["optimize_job"] is job and "Progress" in texts(reloaded.subheader)
    assert reloaded.checkbox(key="optimize_scheme_int8").value and not reloaded.checkbox(
        key="optimize_scheme_float16").value  # the selection the sweep runs, not the defaults
    assert reloaded.get("progress")[0].proto.text.startswith("1 of 2 done")  # the count goes on from where it was
    gate.set()
    job.wait(60)
    reloaded.run()
    assert "2 of 2 schemes finished" in texts(reloaded.success)


def test_compare_warns_when_the_baseline_is_at_chance(app, home):
    from optlib.engine.store import Store

    metrics = {**apphelpers.canned_metrics("float32"), "accuracy": 0.09, "classes": 10}
    apphelpers.put_run(Store(), "float32", "random_init", "fp", "digits", "dfp", metrics=metrics)
    at = app("compare.py")
    assert not at.exception
    assert "about chance for 10 classes" in texts(at.warning)


def displayed(frame_element):
    """The cells of a dataframe as the page shows them (a styled table's display values, where it has them)."""
    import pyarrow as pa

    shown = frame_element.proto.arrow_data.styler.display_values
    return pa.ipc.open_stream(shown).read_pandas() if shown else frame_element.value


def test_compare_opens_on_the_current_model_with_the_others_one_click_away(app, filled_home):
    at = app("compare.py")
    assert not at.exception
    assert at.multiselect(key="compare_filter_model").value == ["digits_cnn"]
    assert set(at.dataframe[0].value["Model"]) == {"digits_cnn"}
    assert "1 other model in the store (tiny.keras): add them under Models" in texts(at.caption)
    at.multiselect(key="compare_filter_model").set_value([]).run()  # cleared: every model, a Table 1 for each
    assert [set(table.value["Model"]) for table in at.dataframe[:2]] == [{"digits_cnn"}, {"tiny.keras"}]
    assert "other model" not in texts(at.caption)


def test_compare_tables_show_a_dash_for_a_missing_figure_never_none(app, home):
    from optlib.engine.store import Store

    store = Store()
    apphelpers.store_canned(store, "float32")
    untrained = {**apphelpers.canned_metrics("float32"), "accuracy": None, "trained": False}
    apphelpers.put_run(store, "float32", "mobilenet_v2", "mnv2-fp", "digits", "digits-fp", metrics=untrained)
    at = app("compare.py")
    at.multiselect(key="compare_filter_model").set_value([]).run()
    assert not at.exception
    table1, table2 = displayed(at.dataframe[0]), displayed(at.dataframe[2])  # Table 1 per model, then Table 2
    assert displayed(at.dataframe[1])["Model"].tolist() == ["mobilenet_v2"]
    untrained_row = table2[table2["Model"] == "mobilenet_v2"].iloc[0]
    assert untrained_row["Accuracy (float32 activations)"] == "—"
    assert "no accuracy (untrained model)" in untrained_row["Note"]
    assert table2[table2["Model"] == "digits_cnn"].iloc[0]["Accuracy (float32 activations)"] == "97.50"
    for table in (table1, table2):
        cells = table.astype(str).to_numpy().ravel()
        assert not {"None", "nan", "NaN", "<NA>"} & set(cells)
    assert {frame.proto.placeholder for frame in at.dataframe[:3]} == {"—"}  # what the browser draws for a gap
    figures = at.dataframe[2].value["Accuracy (float32 activations)"]  # numbers, so a header click sorts by value
    assert figures.dtype.kind == "f" and figures.isna().sum() == 1


def test_present_tells_one_models_story_in_large_type(app, filled_home):
    at = app("present.py")
    assert not at.exception
    assert [h.value for h in at.header] == ["1 · The model as it is", "2 · What we tried", "3 · The trade-off",
                                           "4 · The verdict"]
    assert at.selectbox(key="present_pair").value == ("digits_cnn", "digits")  # the current model
    assert [m.label for m in at.metric] == ["Top-1 accuracy", "Download (gzipped)", "Latency"]
    assert at.metric[0].value == "97.5%"
    # The canned figures: qat is the smallest download and the fastest, within a point of float32.
    size, speed = (s.value for s in at.success)
    assert size.startswith("For size, take qat") and speed.startswith("For speed, take qat")
    assert "font-size: 1.45rem" in at.get("html")[0].proto.body
    at.selectbox(key="present_pair").set_value(("tiny.keras", "digits")).run()
    assert not at.exception
    assert at.success[0].value.startswith("For size, take int8")


def test_present_without_a_baseline_says_what_to_run(app, home):
    from optlib.engine.store import Store

    apphelpers.store_canned(Store(), "int8")
    at = app("present.py")
    assert not at.exception
    assert "has no float32 run: run float32 on Optimize" in texts(at.warning)


def test_a_regression_model_is_shown_by_its_mae_where_lower_is_better_on_every_page(app, home):
    """Home, Compare's Table 1 and Present read the task's metric (MAE), not an empty top-1."""
    from optlib.engine.store import Store

    store = Store()
    for scheme, mae, size in (("float32", 40.0, 5_500), ("int8", 40.2, 4_800), ("int16x8", 39.9, 5_400)):
        metrics = {**apphelpers.canned_metrics(scheme), "size_bytes": size, "accuracy": None, "top5": None,
                   "keras_accuracy": None, "task": "regression", "metric_name": "MAE",
                   "metric_type": "Mean absolute error", "metric_value": mae, "mae": mae, "higher_is_better": False}
        apphelpers.put_run(store, scheme, "diabetes_mlp", "mlp-fp", "diabetes", "diabetes-fp", metrics=metrics)
    at = app()
    assert not at.exception
    best = at.metric[2]
    assert (best.label, best.value) == ("Lowest MAE", "39.9")  # the lowest MAE, not the highest
    assert "lower is better" in best.help
    at = app("compare.py")
    assert not at.exception
    table = displayed(at.dataframe[0]).set_index("Scheme")
    assert "Top-1 accuracy (%)" not in table
    assert table.loc["int8", "Metric"] == "MAE (lower is better)"
    assert (table.loc["int8", "Value"], table.loc["int8", "Δ vs float32"]) == ("40.2", "+0.2")
    at = app("present.py")
    assert not at.exception
    assert (at.metric[0].label, at.metric[0].value) == ("MAE (lower is better)", "40")
    assert "within 1% of float32's MAE (lower is better)" in at.success[0].value
    tradeoff = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert tradeoff["layout"]["yaxis"]["title"]["text"] == "MAE (lower is better)"  # not "no accuracy figure"


def test_a_binary_models_accuracy_reads_in_percent_in_homes_table_as_on_its_tile(app, home):
    from optlib.engine.store import Store

    store = Store()
    for scheme, acc, size in (("float32", 0.88, 5_500), ("int8", 0.865, 4_800)):
        metrics = {**apphelpers.canned_metrics(scheme), "size_bytes": size, "accuracy": None, "top5": None,
                   "keras_accuracy": None, "task": "binary", "metric_name": "Accuracy at 0.5",
                   "metric_type": "Accuracy at threshold 0.5", "metric_value": acc, "higher_is_better": True}
        apphelpers.put_run(store, scheme, "binary_mlp", "bin-fp", "binary", "binary-fp", metrics=metrics)
    at = app()
    assert not at.exception
    assert (at.metric[2].label, at.metric[2].value) == ("Best accuracy at 0.5", "88.0%")
    table = at.dataframe[0].value.set_index("scheme")  # the frame as given; the headers come from column_config
    assert table.loc["int8", "metric_name"] == "Accuracy at 0.5 (%)"
    assert table.loc["int8", "metric_value"] == pytest.approx(86.5)  # was 0.865 beside the tile's 88.0%
    assert table.loc["int8", "metric_delta"] == pytest.approx(-1.5)


def test_home_tiles_fit_a_third_of_a_1024_px_page(app, home):
    from optlib.engine.store import Store

    store = Store()
    apphelpers.store_canned(store, "float32")
    apphelpers.store_canned(store, "int8")
    at = app()
    assert [tile.delta for tile in at.metric] == ["int8 · 3.6× smaller", "int8 · 2.5× faster", "float32"]
    untrained = {**apphelpers.canned_metrics("float32"), "accuracy": None, "trained": False}
    apphelpers.put_run(store, "float32", "mobilenet_v2", "mnv2-fp", "digits", "digits-fp", metrics=untrained)
    at = app()  # the latest model is untrained: no accuracy tile figure
    assert (at.metric[2].value, at.metric[2].delta) == ("—", "untrained model")
    for tile in at.metric:  # "not me…", "int8 · 3.5× smaller th…" and "Fastest (median la…" were cut off at 1024 px
        assert len(tile.label) <= 16 and len(tile.value) <= 10 and len(tile.delta) <= 22, tile
    apphelpers.put_run(store, "lq_blockwise_int4", "mobilenet_v2", "mnv2-fp", "digits", "digits-fp",
                       metrics=apphelpers.canned_metrics("int8"))  # a long scheme name
    at = app()
    assert at.metric[0].delta == "lq_blockwise_int4"  # the name whole; its ratio in the help
    assert "lq_blockwise_int4: 3.6× smaller than float32." in at.metric[0].help


@pytest.mark.parametrize("page", [None, "compare.py", "tables.py"])
def test_every_table_shows_a_dash_for_a_missing_figure(app, filled_home, page):
    at = app(page)
    assert not at.exception and at.dataframe
    assert {frame.proto.placeholder for frame in at.dataframe} == {"—"}  # the browser's default is "None"


def test_optimize_run_button_and_its_count_come_before_the_list_of_schemes(app, home):
    from test_honest_words import in_order

    at = app("optimize.py")
    drawn = [(type(e).__name__, getattr(e, "key", None) or str(getattr(e, "value", ""))) for e in in_order(at.main)]
    run = drawn.index(("Button", "optimize_run_button"))
    count = next(i for i, (kind, text) in enumerate(drawn) if kind == "Caption" and "5 schemes selected" in text)
    schemes_heading = drawn.index(("Subheader", "Schemes"))
    assert count < run < schemes_heading  # on screen at 1024×768 without scrolling past the checkboxes
