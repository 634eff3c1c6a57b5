"""Layer insight & search, driven with AppTest.

The slow engine work is patched where a test is about the page (the layer
comparison, the selective sweep, the search); one test compares the layers
of the built-in model for real, on the runs of the session's real sweep.
"""

import json
import threading

import pytest
from apphelpers import canned_metrics, put_run, texts, wait_until

import optlib.analysis.search
from optlib.analysis import insight, report
from optlib.engine import sweep
from optlib.engine.layers import worst_layers
from optlib.errors import InputError
from optlib.engine.schemes.post_training import recipe_for
from optlib.engine.store import Store
from optlib.engine.sweep import Progress

# The layers of digits_cnn as optlib.engine.layers.compare_layers names them; dense_1 quantizes worst.
LAYER_NAMES = [("digits_cnn/conv2d/Relu;digits_cnn/conv2d/BiasAdd;digits_cnn/conv2d/Conv2D", "CONV_2D"),
               ("digits_cnn/max_pooling2d/MaxPool", "MAX_POOL_2D"),
               ("digits_cnn/dense/MatMul;digits_cnn/dense/Relu;digits_cnn/dense/BiasAdd", "FULLY_CONNECTED"),
               ("digits_cnn/dense_1/MatMul;digits_cnn/dense_1/BiasAdd", "FULLY_CONNECTED"),
               ("StatefulPartitionedCall:0", "SOFTMAX")]
INT8_ERRORS = (0.0045, 0.0043, 0.0056, 0.0092, 0.0039)
WORST, SECOND = LAYER_NAMES[3][0], LAYER_NAMES[2][0]
DEBUGGER = [{"op_name": op, "tensor_name": name, "num_elements": 10.0, "stddev": 0.01, "mean_error": 0.0,
             "max_abs_error": 0.1 * (i + 1), "mean_squared_error": 0.001 * (i + 1), "scale": 0.1, "zero_point": -128.0,
             "rmse/scale": 0.29 + i / 100} for i, (name, op) in enumerate(LAYER_NAMES)]
SELECTIVE_METRICS = {"accuracy": 0.975, "size_bytes": 80_000, "gzip_bytes": 70_000, "latency": 0.045}


def store_run(store, scheme, overrides=None, **metrics):
    """Store an ok run of the current model and data (real fingerprints) with a canned artifact."""
    inputs, [spec] = sweep.plan("digits_cnn", "digits", scheme, overrides)
    values = canned_metrics(scheme)
    latency = metrics.pop("latency", None)
    if latency is not None:
        values["latency_ms"] = {**values["latency_ms"], "median": latency}
    values.update(metrics)
    return put_run(store, scheme, "digits_cnn", inputs.model.fingerprint, "digits", inputs.data.fingerprint,
                   spec.settings, values)


def canned_layers(int16=True):
    rows = []
    for position, ((name, op), error) in enumerate(zip(LAYER_NAMES, INT8_ERRORS)):
        row = {"position": position, "layer": name, "op": op, "int8_error": error, "int8_rmse": error,
               "int8_max_abs": 3 * error}
        if int16:
            row.update(int16x8_error=error / 2, int16x8_rmse=error / 2, int16x8_max_abs=error)
        rows.append(row)
    return rows


class FakeLayerReport:
    """Stands in for pages.insight.layer_report: stores float32, int8 and int16x8 and returns canned layers."""

    def __init__(self, int16_problem="", debugger_problem="", error=None):
        self.int16_problem, self.debugger_problem, self.error = int16_problem, debugger_problem, error
        self.calls = []

    def __call__(self, model_ref, data_ref, store=None, trusted=False, progress=None, runs=None):
        self.calls.append({"model": model_ref, "data": data_ref, "trusted": trusted})
        progress(0.5, "int8: converting")
        if self.error:
            raise self.error
        runs = {name: store_run(Store(store), name) for name in insight.LAYER_SCHEMES}
        labels = ["int8"] if self.int16_problem else ["int8", "int16x8"]
        return {"runs": runs, "layers": canned_layers(int16=not self.int16_problem), "labels": labels,
                "int16_problem": self.int16_problem, "debugger": [] if self.debugger_problem else DEBUGGER,
                "debugger_problem": self.debugger_problem, "samples": 64}


class FakeSelectiveSweep:
    """Stands in for optlib.engine.sweep.run for the int8_selective run: progress events, then a stored row."""

    def __init__(self):
        self.calls = []

    def __call__(self, model_ref, data_ref, selection="all", overrides=None, store=None, recompute=False,
                 progress=None, trusted=False, weights=None, budget_s=None, executor=None, cancel=None):
        self.calls.append({"selection": selection, "overrides": dict(overrides or {})})
        progress(Progress(selection, 0, 1, "running", 0.5, 0, "converting with 1 layer(s) in float"))
        keep = overrides["keep_float"].split(",")
        recipe = {"converter": recipe_for("int8", {"rep_samples": 200}),
                  "selective": {"kept_float": keep, "denylisted_nodes": keep + ["StatefulPartitionedCall:01"],
                                "channel_error": {}, "ranked_by": "channel error"}}
        row = store_run(Store(store), selection, overrides, recipe=recipe, **SELECTIVE_METRICS)
        progress(Progress(selection, 0, 1, "ok", 1.0, 1, "done", row))
        return {"model": model_ref, "model_note": "", "dataset": data_ref, "store": str(store), "results": [row]}


def search_result(met=True):
    base = {"accuracy": 0.975, "size_bytes": 230_400, "latency_ms": 0.030, "id": None}
    trail = [{"scheme": "int8", "settings": {}, "id": None, "status": "ok", "accuracy": 0.969, "size_bytes": 64_376,
              "latency_ms": 0.012, "loss": 0.0062, "objective": 64_376.0, "met": met,
              "verdict": "meets the target; best so far" if met else "loses 0.62% of float32 accuracy, more than "
                                                                      "the 0.00% accepted"},
             {"scheme": "dynamic", "settings": {}, "id": None, "status": "failed", "accuracy": None,
              "size_bytes": None, "latency_ms": None, "verdict": "failed: RuntimeError: boom"}]
    return {"target": {"max_loss": 0.01 if met else 0.0, "min_accuracy": 0.975 * (0.99 if met else 1.0),
                       "objective": "size"},
            "baseline": base, "best": trail[0], "met": met, "trail": trail,
            "explanation": ("int8 meets the target (accuracy 0.9690, a loss of 0.62% ≤ 1.00%) and is the best on "
                            "size among the candidates tried: 3.58x smaller than float32." if met else
                            "No candidate met the target of at most 0.00% loss; the closest is int8 with a loss "
                            "of 0.62%.")}


class FakeSearch:
    """Stands in for optlib.analysis.search.search: reports progress like the engine, stores the runs it names."""

    def __init__(self, met=True, gate=None, error=None):
        self.met, self.gate, self.error, self.calls = met, gate, error, []

    def __call__(self, model_ref, data_ref, max_loss=0.01, objective="size", trials=8, budget_s=None, store=None,
                 overrides=None, progress=None, weight=0.5, trusted=False):
        self.calls.append({"model": model_ref, "data": data_ref, "max_loss": max_loss, "objective": objective,
                           "trials": trials, "budget_s": budget_s, "trusted": trusted})
        if self.error:
            raise self.error
        result = search_result(self.met)
        result["target"]["objective"] = objective
        base = store_run(Store(store), "float32")
        progress(Progress("float32", 0, 1, "cached", 1.0, 1, "served from the store", base))
        if self.gate is not None:
            self.gate.wait(60)
        int8 = store_run(Store(store), "int8")
        progress(Progress("int8", 0, 1, "ok", 1.0, 1, "done", int8))
        result["baseline"]["id"], result["trail"][0]["id"] = base["id"], int8["id"]
        return result


def compare_layers(at):
    """Click Compare layers, let the background job finish, draw the page again."""
    at.button(key="insight_layers_button").click().run()
    job = at.session_state["insight_layer_job"]
    job.wait(600)  # the first TensorFlow import and the debugger's run take a while on a loaded machine
    assert not job.running, "the layer comparison did not end within 10 minutes"
    return at.run()


def chart_titles(at):
    """The titles of the Plotly charts on the page, in order."""
    return [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")]


def use_fake_layer_report(monkeypatch, fake):
    """Put ``fake`` in place of insight.layer_report, called in this process (a fake in the isolated child
    could not record its calls or wait on a test's events); the real comparison runs isolated below."""
    from optlib.engine import isolated

    def here(work, *args, progress=None, what=None, memory=None, waiting=None, touches=None, deadline_s=None, **kwargs):
        return work(*args, **kwargs, **({"progress": progress} if progress else {}))

    monkeypatch.setattr(insight, "layer_runs", lambda *args, **kwargs: {})  # the fake makes and stores its runs
    monkeypatch.setattr(insight, "layer_report", fake)
    monkeypatch.setattr(isolated, "call", here)


@pytest.fixture
def layers(monkeypatch):
    fake = FakeLayerReport()
    use_fake_layer_report(monkeypatch, fake)
    return fake


# --- Before anything ran -------------------------------------------------------------------

def test_the_page_explains_each_step_before_anything_ran(app, home):
    at = app("insight.py")
    assert not at.exception
    assert at.title[0].value == "Layer insight & search"
    assert [s.value for s in at.subheader] == [
        "Which layers lose accuracy in int8", "Per-tensor validation (LiteRT Quantizer)", "Weights per layer",
        "Keep the worst layers in float", "Search for the smallest or fastest model within an accuracy loss"]
    assert at.button(key="insight_layers_button").label == "Compare layers"
    info = texts(at.info)
    assert "Compare layers first" in info and "No pruning run" in info and "No quantized run" in info
    assert at.number_input(key="insight_max_loss").value == 1.0  # 1% of float32 top-1
    assert at.selectbox(key="insight_objective").value == "size"
    assert at.button(key="insight_search_button").label == "Search 4 candidates"
    assert "int8, dynamic, int8_selective · worst 1, int8_selective · worst 2" in texts(at.caption)
    assert not at.get("plotly_chart")


def test_an_unusable_model_is_reported_before_anything_runs(app, home, tmp_path):
    at = app("insight.py", state={"app_model_ref": str(tmp_path / "gone.keras")})
    assert not at.exception
    assert "does not exist" in texts(at.error)


def test_no_work_starts_here_while_another_page_runs_some(app, home, layers):
    class Running:
        running = True

    at = compare_layers(app("insight.py"))  # a comparison to keep layers from
    at.session_state["optimize_job"] = Running()
    at.run()
    assert not at.exception
    for key in ("insight_layers_button", "insight_keep_button", "insight_search_button"):
        assert at.button(key=key).disabled
        assert at.button(key=key).help == "Work is running on Optimize; wait for it to finish."


# --- Layers, for real --------------------------------------------------------------------------

def test_a_real_layer_comparison_of_the_built_in_model(app, swept_home, monkeypatch):
    monkeypatch.setenv("OPTLIB_HOME", str(swept_home))
    stored_before = len(Store().rows())
    at = compare_layers(app("insight.py"))
    assert not at.exception, at.exception
    job = at.session_state["insight_layer_job"]
    assert job.error is None
    assert len(Store().rows()) == stored_before  # float32, int8 and int16x8 came from the store
    result = job.result
    assert result["labels"] == ["int8", "int16x8"] and result["samples"] == 64
    assert [r["op"] for r in result["layers"]][:2] == ["CONV_2D", "MAX_POOL_2D"]
    worst = worst_layers(result["layers"], "int8", 1)
    if insight.int8_lost_nothing(result["runs"]):  # nothing to win back: none is suggested, and the page says so
        assert at.session_state["insight_keep"] == []
        assert any("keeping layers in float is not needed" in s.value for s in at.success)
    else:
        assert at.session_state["insight_keep"] == worst  # the worst layer is suggested at once
        assert at.button(key="insight_keep_button").label == "Keep 1 layer in float and re-convert"
    assert chart_titles(at) == ["Layers that lose most in int8 (worst first)",
                                "Layer by layer: int8 against int16 activations",
                                "QuantizationDebugger · RMSE / scale (error in quantization steps) per layer",
                                "Weights of dense/MatMul"]  # the kernel with the most weights first
    debugger = at.dataframe[0].value
    assert len(debugger) == len(result["debugger"]) >= 5
    assert list(debugger["RMSE / scale"]) == sorted(debugger["RMSE / scale"], reverse=True)
    assert "Compared on 64 inputs" in texts(at.caption)
    assert at.selectbox(key="insight_kernel").options  # the kernels of the float32 model
    at.selectbox(key="insight_debug_metric").set_value("max_abs_error").run()
    at.radio(key="insight_debug_order").set_value("graph").run()
    at.selectbox(key="insight_kernel").set_value(at.selectbox(key="insight_kernel").options[-1]).run()
    assert not at.exception


# --- Layers, patched ---------------------------------------------------------------------------

def test_the_comparison_runs_in_the_background_for_the_current_model(app, home, layers):
    at = compare_layers(app("insight.py"))
    assert not at.exception
    assert layers.calls == [{"model": "digits_cnn", "data": "digits", "trusted": False}]
    assert at.session_state["insight_keep"] == [WORST]
    assert at.multiselect(key="insight_keep").value == [WORST]
    first = at.multiselect(key="insight_keep").options[0]
    assert first == "dense_1/MatMul · #3 · FULLY_CONNECTED · int8 error 0.0092"
    assert "runs used: float32 #1, int8 #2, int16x8 #3" in texts(at.caption)
    assert "cannot be read" in texts(at.warning)  # the canned artifacts hold no real weights: said, not a crash
    assert len(chart_titles(at)) == 3  # ranking, int8 vs int16x8, debugger


def test_suggest_the_worst_n_layers(app, home, layers):
    at = compare_layers(app("insight.py"))
    at.number_input(key="insight_worst_n").set_value(2)
    at.button(key="insight_suggest_button").click().run()
    assert not at.exception
    assert at.multiselect(key="insight_keep").value == [WORST, SECOND]
    assert at.button(key="insight_keep_button").label == "Keep 2 layers in float and re-convert"
    at.multiselect(key="insight_keep").set_value([]).run()
    assert at.button(key="insight_keep_button").disabled


def test_only_int8_is_compared_when_int16x8_fails(app, home, monkeypatch):
    problem = "int16x8 failed: RuntimeError: no_integer_overflow_from_quantization in DEPTHWISE_CONV_2D"
    use_fake_layer_report(monkeypatch, FakeLayerReport(int16_problem=problem,
                                                               debugger_problem="RuntimeError: no debug ops"))
    at = compare_layers(app("insight.py"))
    assert not at.exception
    warnings = texts(at.warning)
    assert "Only int8 is compared with float32 here" in warnings and "no_integer_overflow" in warnings
    assert "QuantizationDebugger could not run on this model: RuntimeError: no debug ops" in warnings
    assert chart_titles(at) == ["Layers that lose most in int8 (worst first)",
                                "Layer by layer: int8 channel error"]  # no debugger chart


def test_a_comparison_that_cannot_run_is_an_error_with_what_to_do(app, home, monkeypatch):
    use_fake_layer_report(monkeypatch, FakeLayerReport(
        error=InputError("int8 could not be made (RuntimeError: boom); the layer comparison needs it.")))
    at = compare_layers(app("insight.py"))
    assert not at.exception
    assert "int8 could not be made" in texts(at.error) and "Model & data" in texts(at.error)


def test_a_comparison_of_another_model_is_not_shown_as_this_ones(app, home, layers):
    at = compare_layers(app("insight.py"))
    at.session_state["app_model_ref"] = "mobilenet_v2"
    at.run()
    assert not at.exception
    assert "The last comparison was of digits_cnn with digits" in texts(at.caption)
    assert not [w for w in at.multiselect if w.key == "insight_keep"]


# --- Selective quantization ------------------------------------------------------------------

def test_keeping_the_worst_layer_in_float_makes_an_int8_selective_run_compare_shows(app, home, layers, monkeypatch):
    fake = FakeSelectiveSweep()
    monkeypatch.setattr(sweep, "run", fake)
    at = compare_layers(app("insight.py"))
    at.button(key="insight_keep_button").click().run()
    at.session_state["insight_selective_job"].wait(60)
    at.run()
    assert not at.exception
    assert fake.calls == [{"selection": "int8_selective", "overrides": {"keep_float": WORST}}]
    table = at.dataframe[-1].value
    assert list(table["scheme"]) == ["float32", "int8", "int8_selective"]
    assert "Before and after: keeping layers in float" in chart_titles(at)
    captions = texts(at.caption)
    assert "kept in float: **dense_1/MatMul**, and the layers reading it: model output" in captions
    slower = [i.value for i in at.info if "Why is this slower?" in i.value]
    assert len(slower) == 1 and "int8_selective" in slower[0] and "kept in float" in slower[0]
    code = [c.value for c in at.code]
    assert any("QuantizationDebugOptions(denylisted_nodes=DENYLISTED_NODES)" in c and WORST in c for c in code)

    at.switch_page("pages/compare.py").run()
    assert not at.exception
    assert "int8_selective" in at.multiselect(key="compare_filter_scheme").options
    assert "int8_selective" in set(at.dataframe[0].value["Scheme"])
    assert "Why is this slower?" in texts(at.markdown)
    at.multiselect(key="compare_filter_scheme").set_value(["int8_selective"]).run()
    assert not at.exception
    assert "Why is this slower?" in texts(at.markdown)  # its float32 baseline is found outside the filter


def test_the_newest_stored_int8_selective_run_is_shown_without_a_comparison(app, home):
    store = Store()
    for name in ("float32", "int8"):
        store_run(store, name)
    recipe = {"converter": {}, "selective": {"kept_float": [WORST], "denylisted_nodes": [WORST]}}
    row = store_run(store, "int8_selective", {"keep_float": WORST}, recipe=recipe, **SELECTIVE_METRICS)
    at = app("insight.py")
    assert not at.exception
    assert "The newest stored int8_selective run of this model:" in texts(at.caption)
    assert list(at.dataframe[0].value["id"]) == [1, 2, row["id"]]


# --- Weights ---------------------------------------------------------------------------------

def test_a_pruned_run_shows_the_sparsity_each_layer_reached(app, home):
    kernels = [{"name": "digits_cnn/conv2d/Conv2D", "op": "CONV_2D", "shape": [16, 3, 3, 1], "dtype": "float32",
                "sparsity": 0.25, "unique": 100, "unique_per_channel": 9},
               {"name": "digits_cnn/dense/MatMul", "op": "FULLY_CONNECTED", "shape": [64, 800], "dtype": "float32",
                "sparsity": 0.5, "unique": 200, "unique_per_channel": 100}]
    row = store_run(Store(), "prune", kernels=kernels)
    at = app("insight.py")
    assert not at.exception
    assert "No pruning run" not in texts(at.info)
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert figure["layout"]["title"]["text"] == "Achieved sparsity per layer (prune)"
    assert figure["data"][0]["y"] == [25.0, 50.0]
    assert f"run #{row['id']} (prune)" in texts(at.caption)


# --- Search ----------------------------------------------------------------------------------

def test_the_search_runs_in_the_background_and_shows_the_trail(app, home, monkeypatch):
    gate = threading.Event()
    fake = FakeSearch(gate=gate)
    monkeypatch.setattr(optlib.analysis.search, "search", fake)
    at = app("insight.py")
    at.button(key="insight_search_button").click().run()
    job = at.session_state["insight_search_job"]
    wait_until(lambda: job.state()[2])  # until the baseline is in (the search then waits for the gate)
    at.run()
    assert not at.exception
    assert at.button(key="insight_search_button").disabled
    assert "**float32**" in texts(at.markdown) and "baseline; top-1 97.5%" in texts(at.markdown)
    at.switch_page("pages/compare.py").run()  # the search goes on meanwhile
    assert at.session_state["insight_search_job"].running
    gate.set()
    job.wait(60)
    at.switch_page("pages/insight.py").run()
    assert not at.exception
    assert fake.calls == [{"model": "digits_cnn", "data": "digits", "max_loss": 0.01, "objective": "size",
                           "trials": 4, "budget_s": None, "trusted": False}]
    assert "int8 meets the target" in texts(at.success)
    assert [m.value for m in at.metric][:3] == ["int8", "96.90%", "64.4 kB"]  # decimal kB, as everywhere
    trail = at.dataframe[-1].value
    assert list(trail["Candidate"]) == ["float32 (baseline)", "int8", "dynamic"]
    assert trail["Verdict"][1].startswith("★ chosen")
    assert at.radio(key="insight_search_axis").value == "size"
    assert "Search trail: accuracy vs size (objective: size)" in chart_titles(at)
    at.radio(key="insight_search_axis").set_value("latency").run()
    assert not at.exception
    assert "Search trail: accuracy vs latency (objective: size)" in chart_titles(at)
    assert any("tf.lite.TFLiteConverter" in c.value for c in at.code)  # code for the chosen candidate


def test_search_settings_reach_the_engine(app, home, monkeypatch):
    fake = FakeSearch()
    monkeypatch.setattr(optlib.analysis.search, "search", fake)
    at = app("insight.py")
    at.number_input(key="insight_max_loss").set_value(2.5)
    at.selectbox(key="insight_objective").set_value("latency").run()
    at.number_input(key="insight_trials").set_value(2)
    at.number_input(key="insight_budget").set_value(120).run()
    at.session_state["app_trusted"] = True  # as the Model & data page sets it for a trusted upload
    assert at.button(key="insight_search_button").label == "Search 2 candidates"
    assert "int8, int8_selective · worst 1." in texts(at.caption)
    at.button(key="insight_search_button").click().run()
    at.session_state["insight_search_job"].wait(60)
    at.run()
    assert not at.exception
    assert fake.calls == [{"model": "digits_cnn", "data": "digits", "max_loss": 0.025, "objective": "latency",
                           "trials": 2, "budget_s": 120, "trusted": True}]
    assert at.radio(key="insight_search_axis").value == "latency"  # the chart follows the objective


def test_trials_never_exceed_the_candidates_of_an_objective(app, home):
    at = app("insight.py")
    at.number_input(key="insight_trials").set_value(9).run()
    at.selectbox(key="insight_objective").set_value("latency").run()
    assert not at.exception
    assert at.number_input(key="insight_trials").value == len(optlib.analysis.search.order("latency"))


def test_a_search_that_misses_the_target_says_so(app, home, monkeypatch):
    monkeypatch.setattr(optlib.analysis.search, "search", FakeSearch(met=False))
    at = app("insight.py")
    at.button(key="insight_search_button").click().run()
    at.session_state["insight_search_job"].wait(60)
    at.run()
    assert not at.exception
    assert "No candidate met the target" in texts(at.warning)
    assert at.metric[0].label == "Closest candidate"


def test_a_search_that_cannot_start_is_an_error(app, home, monkeypatch):
    monkeypatch.setattr(optlib.analysis.search, "search", FakeSearch(error=InputError(
        "The float32 baseline has no accuracy (untrained); the search needs a trained model and labelled test data.")))
    at = app("insight.py")
    at.button(key="insight_search_button").click().run()
    at.session_state["insight_search_job"].wait(60)
    at.run()
    assert not at.exception
    assert "needs a trained model" in texts(at.error)


# --- Compare explains ---------------------------------------------------------------------------

def test_compare_explains_runs_that_did_not_shrink(app, filled_home):
    at = app("compare.py")
    assert not at.exception
    notes = [m.value for m in at.markdown if "Why" in m.value and "run #" in m.value]
    assert len(notes) == 1  # only prune: the other canned runs shrank and are not slower than float32
    assert "**prune** on digits_cnn" in notes[0] and "Why didn't this shrink? prune zeroes 50% of the weights" \
        in notes[0]


# --- The engine side of the page: store look-ups and the layer report --------------------------------

def test_newest_runs_finds_only_the_current_model_and_data_with_their_artifact(home):
    store = Store()
    old = store_run(store, "int8")
    new = store_run(store, "int8", {"rep_samples": 100})  # any settings will do
    put_run(store, "float32", "digits_cnn", "another-file", "digits", "digits-fp", {}, canned_metrics("float32"),
            artifact=b"TFL3")  # same name, another file
    gone = store_run(store, "int16x8")
    (home / "artifacts" / gone["tflite_path"].split("/")[-1]).unlink()
    found = insight.newest_runs("digits_cnn", "digits", ("float32", "int8", "int16x8"))
    assert list(found) == ["int8"] and found["int8"]["id"] == new["id"] != old["id"]
    with pytest.raises(InputError, match="Unknown model"):
        insight.newest_runs("no_such_model", "digits", ("int8",))


def test_layer_report_compares_int8_alone_when_int16x8_failed(home, monkeypatch):
    from optlib.inputs import models, preparation

    store = Store()
    for name in ("float32", "int8"):
        store_run(store, name)
    failed = {"id": 9, "scheme": "int16x8", "status": "failed", "error": "RuntimeError: overflow"}

    def fake_sweep(model_ref, data_ref, selection, overrides, store_, trusted=False, progress=None):
        assert selection == "int16x8"  # float32 and int8 come from the store
        progress(Progress("int16x8", 0, 1, "failed", 1.0, 1, "RuntimeError: overflow", failed))
        return {"results": [failed]}

    class Data:
        input_shape = (28, 28, 1)

        def representative(self, count):
            return list(range(count))

    compared = []
    monkeypatch.setattr(sweep, "run", fake_sweep)
    monkeypatch.setattr(models, "load", lambda source, trusted=False: "keras model")
    monkeypatch.setattr(preparation, "load", lambda source, model, scale, task="": Data())
    monkeypatch.setattr(insight, "compare_layers", lambda f, q, x: compared.append(sorted(q)) or canned_layers(False))
    monkeypatch.setattr(insight, "debugger_metrics", lambda model, x: (_ for _ in ()).throw(RuntimeError("no ops")))
    events = []
    result = insight.layer_report("digits_cnn", "digits", progress=lambda f, m: events.append((f, m)))
    assert compared == [["int8"]]
    assert result["labels"] == ["int8"] and result["int16_problem"] == "int16x8 failed: RuntimeError: overflow"
    assert result["debugger"] == [] and result["debugger_problem"] == "RuntimeError: no ops"
    assert result["samples"] == 64 and result["runs"]["int16x8"] is failed
    assert events[-1] == (1.0, "done") and all(0 <= f <= 1 for f, _ in events)


def test_layer_report_falls_back_to_int8_when_int16x8_cannot_run_layer_by_layer(home, monkeypatch):
    from optlib.inputs import models, preparation

    store = Store()
    for name in insight.LAYER_SCHEMES:
        store_run(store, name)

    class Data:
        input_shape = (224, 224, 3)  # big inputs: fewer samples, every activation is kept

        def representative(self, count):
            return list(range(count))

    def fake_compare(float_model, quantized, x):
        if "int16x8" in quantized:
            raise RuntimeError("allocate_tensors failed")
        return canned_layers(False)

    monkeypatch.setattr(models, "load", lambda source, trusted=False: "keras model")
    monkeypatch.setattr(preparation, "load", lambda source, model, scale, task="": Data())
    monkeypatch.setattr(insight, "compare_layers", fake_compare)
    monkeypatch.setattr(insight, "debugger_metrics", lambda model, x: DEBUGGER)
    result = insight.layer_report("digits_cnn", "digits")
    assert result["labels"] == ["int8"] and "allocate_tensors failed" in result["int16_problem"]
    assert result["samples"] == 8 and result["debugger"] == DEBUGGER


def test_layer_report_needs_float32_and_int8(home, monkeypatch):
    failed = {"id": 1, "scheme": "int8", "status": "failed", "error": "RuntimeError: boom"}
    ok = {"id": 2, "scheme": "float32", "status": "ok", "error": None}
    monkeypatch.setattr(sweep, "run", lambda *a, **k: {"results": [ok, failed, {**failed, "scheme": "int16x8"}]})
    with pytest.raises(InputError, match=r"int8 could not be made \(RuntimeError: boom\)"):
        insight.layer_report("digits_cnn", "digits")


def test_report_frame_puts_int8_selective_right_after_int8_with_its_own_colour():
    rows = [{"id": i, "scheme": name, "status": "ok", "model": "m", "dataset": "d"}
            for i, name in enumerate(["qat", "int8_selective", "float32", "int8", "no_such_scheme"])]
    assert list(report.frame(rows)["scheme"]) == ["float32", "int8", "int8_selective", "qat", "no_such_scheme"]
    from optlib.engine import schemes
    from optlib.views.charts import color_of

    others = {color_of(name) for name in schemes.names(variants=True) if name != "int8_selective"}
    assert color_of("int8_selective") not in others



def layer_report_that_breaks(model_ref, data_ref, store=None, trusted=False, progress=None, runs=None):
    """A layer comparison that fails half-way with an error that is not an InputError (run in the child)."""
    progress(0.1, "int8: converting")
    raise RuntimeError("the debugger broke")


def test_a_layer_comparison_that_breaks_in_its_own_process_says_how_and_keeps_its_progress(home, monkeypatch):
    from pages._jobs import LayerJob

    monkeypatch.setattr(insight, "layer_runs", lambda *args, **kwargs: {})  # nothing to make first
    monkeypatch.setattr(insight, "layer_report", layer_report_that_breaks)  # pickled by name: runs in the child
    job = LayerJob("digits_cnn", "digits").start()
    job.wait(120)
    assert not job.running
    assert job.error == "The layer comparison stopped: RuntimeError: the debugger broke"
    assert job.events() == [(0.1, "int8: converting")]  # through the pipe, in order


def layer_report_of(model_ref, data_ref, store=None, trusted=False, progress=None, runs=None):
    """The runs the child was given (run in the child)."""
    return runs


def test_what_is_missing_is_made_before_a_page_work_turn_is_taken(home, monkeypatch):
    """The sweep that makes float32, int8 and int16x8 waits in the sweeps' line: it must not hold one of the
    few page-work turns meanwhile (Model & data's facts of other sessions would wait on a whole sweep)."""
    from optlib.engine import admission
    from pages._jobs import LayerJob

    turns_held = []

    def layer_runs(*args, **kwargs):
        turns_held.append(len(list(admission.queue_dir("page-work").glob("*.ticket"))))
        return {"float32": {"id": 1}}

    monkeypatch.setattr(insight, "layer_runs", layer_runs)
    monkeypatch.setattr(insight, "layer_report", layer_report_of)  # pickled by name: runs in the child
    job = LayerJob("digits_cnn", "digits").start()
    job.wait(120)
    assert job.error is None and job.result == {"float32": {"id": 1}}  # the child compared what was made
    assert turns_held == [0]
