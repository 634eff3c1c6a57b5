"""optlib.engine.measure: every latency figure says which LiteRT runtime timed it, and why it fell back."""

import numpy as np
import pytest

from optlib.analysis import explain
from optlib.engine import measure


def _convert(function, *specs):
    from optlib._keras import tf

    tf_ = tf()
    concrete = tf_.function(function, input_signature=[tf_.TensorSpec(s, tf_.float32) for s in specs])
    converter = tf_.lite.TFLiteConverter.from_concrete_functions([concrete.get_concrete_function()])
    return converter.convert()


@pytest.fixture(scope="module")
def one_input(tmp_path_factory):
    """A one-input model CompiledModel can run."""
    path = tmp_path_factory.mktemp("tflite") / "one.tflite"
    path.write_bytes(_convert(lambda x: x * 2.0 + 1.0, (1, 4)))
    return path


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory):
    """A two-input model: optlib times only single-input models on CompiledModel."""
    path = tmp_path_factory.mktemp("tflite") / "two.tflite"
    path.write_bytes(_convert(lambda a, b: a + b, (1, 4), (1, 4)))
    return path


def test_a_compiled_model_says_so_and_has_no_fallback_reason(one_input):
    latency = measure.latency(one_input, np.zeros(4, np.float32), runs=3, warmup=1)
    assert latency["runtime"] == "LiteRT CompiledModel (CPU)"
    assert latency["fallback_reason"] is None


def test_a_model_compiledmodel_cannot_time_records_the_interpreter_and_why(two_inputs):
    latency = measure.latency(two_inputs, np.zeros(4, np.float32), runs=3, warmup=1)
    assert latency["runtime"] == "LiteRT Interpreter (XNNPACK)"
    assert latency["fallback_reason"] == "ValueError: only single-input models are timed on CompiledModel"
    assert latency["median"] > 0


def test_the_fallback_reason_is_the_exception_type_and_its_first_line(one_input, monkeypatch):
    def refuse(model, value, threads):
        raise RuntimeError("Failed to compile\nsecond line with details")

    monkeypatch.setattr(measure, "_compiled_runner", refuse)
    latency = measure.latency(one_input, np.zeros(4, np.float32), runs=3, warmup=1)
    assert latency["runtime"] == "LiteRT Interpreter (XNNPACK)"
    assert latency["fallback_reason"] == "RuntimeError: Failed to compile"


def test_fallback_note_names_the_runtime_and_the_reason():
    fell_back = {"median": 1.0, "runtime": "LiteRT Interpreter (XNNPACK)",
                 "fallback_reason": "ValueError: only single-input models are timed on CompiledModel"}
    assert explain.fallback_note(fell_back) == (  # a reason optlib.analysis.failures knows: in words
        "timed on LiteRT Interpreter (XNNPACK): the model has several inputs, and only single-input models are "
        "timed on LiteRT's CompiledModel")
    int16 = {**fell_back, "fallback_reason": "ValueError: Unsupported dtype: int16"}  # lq_int16x8's int16 input
    assert explain.fallback_note(int16) == ("timed on LiteRT Interpreter (XNNPACK): LiteRT's CompiledModel has no "
                                            "int16 tensors, and this model's input is int16")
    new = {**fell_back, "fallback_reason": "RuntimeError: Failed to compile"}  # one it does not know: as it is
    assert explain.fallback_note(new) == ("timed on LiteRT Interpreter (XNNPACK): CompiledModel could not run it "
                                          "(RuntimeError: Failed to compile)")
    assert explain.fallback_note({"median": 1.0, "runtime": "LiteRT CompiledModel (CPU)",
                                  "fallback_reason": None}) is None
    assert explain.fallback_note({"median": 1.0, "runtime": "LiteRT Interpreter (XNNPACK)"}) == (
        "timed on LiteRT Interpreter (XNNPACK): CompiledModel could not run it (the reason was not recorded)")
    assert explain.fallback_note({"median": 1.0}) is None  # stored before runtimes were recorded
    assert explain.fallback_note(None) is None


def test_the_report_carries_the_runtime_and_the_reason():
    from optlib.analysis import report

    latency = {"median": 1.0, "runtime": "LiteRT Interpreter (XNNPACK)", "fallback_reason": "ValueError: two inputs"}
    row = {"id": 1, "model": "m", "dataset": "d", "scheme": "int8", "status": "ok", "latency_ms": latency}
    frame_row = report.frame([row]).iloc[0]
    assert frame_row["runtime"] == "LiteRT Interpreter (XNNPACK)"
    assert frame_row["fallback_reason"] == "ValueError: two inputs"
    assert explain.fallback_note(frame_row) == explain.fallback_note(latency)


def test_a_long_evaluation_tries_one_thread_and_gives_the_same_outputs(tmp_path, monkeypatch):
    from optlib.engine import machine, outputs

    path = tmp_path / "batch.tflite"
    path.write_bytes(_convert(lambda x: x * 2.0 + 1.0, (None, 4)))  # a batch axis it can be resized on
    x = np.arange(400, dtype=np.float32).reshape(100, 4)
    asked = []
    ready = outputs._ready
    monkeypatch.setattr(outputs, "_ready", lambda model, threads, *rest: asked.append(threads) or ready(
        model, threads, *rest))
    monkeypatch.setattr(machine, "default_threads", lambda: 2)
    probed = outputs.predict(path, [x], ["x"], ["output_0"], batch=10)  # 10 invokes: worth trying one thread
    assert asked == [None, 1]
    np.testing.assert_array_equal(probed[0], x * 2.0 + 1.0)
    asked.clear()
    outputs.predict(path, [x], ["x"], ["output_0"], batch=50)  # two invokes: not worth it
    assert asked == [None]
