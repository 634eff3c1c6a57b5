"""Where a model runs: the GPU delegate, integer-only accelerators and TensorFlow Lite for Microcontrollers.

A tiny CNN converted four ways proves what digits_cnn does (tests/unit/test_digits_cnn.py checks it there).
"""

import numpy as np
import pytest

from optlib.engine import targets
from optlib.errors import InputError


@pytest.fixture(scope="module")
def tiny(tiny_model_path, digits_arrays):
    """The trained tiny CNN as float32, float16, dynamic and int8 with int8 input and output, and its test data."""
    from optlib._keras import keras
    from optlib.engine import convert

    _, _, x_test, y_test = digits_arrays
    x = x_test[..., None] / 16.0
    model = keras().models.load_model(tiny_model_path)
    recipes = {"float32": {}, "float16": {"optimizations": ["DEFAULT"], "supported_types": ["float16"]},
               "dynamic": {"optimizations": ["DEFAULT"]},
               "int8_io": {"optimizations": ["DEFAULT"], "supported_ops": ["TFLITE_BUILTINS_INT8"],
                           "inference_input_type": "int8", "inference_output_type": "int8",
                           "representative_samples": 50}}
    made = {name: convert.convert(model, recipe, x[:50].astype(np.float32)) for name, recipe in recipes.items()}
    return made, x, y_test


def _scores(tflite, x):
    from optlib.engine import measure

    return measure.predict(tflite, x)


def test_int8_with_int8_io_runs_on_tflm_with_an_arena_and_keeps_litert_accuracy(tiny):
    made, x, y = tiny
    found = targets.check(made["int8_io"], x[:200], y[:200], _scores(made["int8_io"], x[:200]))
    micro = found["micro"]
    assert micro["runs"] is True and micro["reason"] is None
    assert 1_000 < micro["arena_bytes"] < 1_000_000 and micro["flash_bytes"] == len(made["int8_io"])
    assert micro["samples"] == 200 and micro["accuracy"] > 0.8
    assert abs(micro["accuracy"] - micro["litert_accuracy"]) <= 0.01 and micro["agreement"] >= 0.99
    assert found["integer_only"]["runs"] is True
    assert (found["integer_only"]["input_type"], found["integer_only"]["output_type"]) == ("int8", "int8")
    assert found["gpu"]["runs"] is True and found["gpu"]["unsupported_ops"] == []
    assert found["cpu"]["tensor_bytes"] > 0


def test_float16_and_dynamic_are_not_integer_only_and_say_why(tiny):
    made, _, _ = tiny
    f16, dynamic = targets.check(made["float16"]), targets.check(made["dynamic"])
    assert f16["integer_only"]["runs"] is False and "float16" in f16["integer_only"]["reason"]
    assert "DEQUANTIZE" in f16["integer_only"]["float_ops"]
    assert dynamic["integer_only"]["runs"] is False and "float32" in dynamic["integer_only"]["reason"]
    assert "FULLY_CONNECTED" in dynamic["integer_only"]["float_ops"]
    for found in (f16, dynamic):
        assert "no vendor compiler" in found["integer_only"]["method"]
        assert "input is float32" in found["integer_only"]["reason"]
    # TFLM's own words: it has no float16 DEQUANTIZE and no hybrid (dynamic range) kernels (float input, int8 weights).
    assert f16["micro"]["runs"] is False and "DEQUANTIZE" in f16["micro"]["reason"]
    assert dynamic["micro"]["runs"] is False and "INT8" in dynamic["micro"]["reason"]
    assert f16["micro"]["arena_bytes"] is None and f16["micro"]["flash_bytes"] == len(made["float16"])


def test_an_int8_model_with_float_io_computes_in_integers_but_is_not_integer_only(tiny):
    made, _, _ = tiny
    found = targets.check(made["float32"])
    assert found["micro"]["runs"] is True  # TFLM runs float models on its reference kernels
    assert found["integer_only"]["integer_ops"] is False


def test_ops_outside_the_gpu_delegates_list_are_named(tmp_path):
    """LiteRT's analyzer calls this model GPU-compatible; the GPU delegate has no Asin and no custom ops."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
    def f(x):
        return tf.math.asin(tf.clip_by_value(x, -1.0, 1.0)) + x

    converter = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    converter.allow_custom_ops = True
    found = targets.check(converter.convert())
    assert found["gpu"]["runs"] is False and "Asin" in found["gpu"]["unsupported_ops"]
    assert "Asin" in found["gpu"]["reason"] and found["gpu"]["ops_on_gpu"] < found["gpu"]["ops"]
    assert found["micro"]["runs"] is False and "Failed to get registration" in found["micro"]["reason"]


def test_a_check_that_fails_is_recorded_in_its_own_entry(tiny, monkeypatch):
    made, _, _ = tiny

    def broken(*args):
        raise RuntimeError("arena exploded")

    monkeypatch.setattr(targets, "_micro_isolated", broken)
    found = targets.check(made["int8_io"])
    assert found["micro"] == {"runs": None, "reason": "the Microcontroller (TFLM) check failed: RuntimeError: "
                                                      "arena exploded"}
    assert found["gpu"]["runs"] is True and found["integer_only"]["runs"] is True
    unreadable = targets.check(b"not a model at all")
    assert all(entry["runs"] is None and "could not be read" in entry["reason"] for entry in unreadable.values())


def test_the_arena_is_read_from_tflms_allocator_report():
    lines = ["[RecordingMicroAllocator] Arena allocation total 16880 bytes",
             "[RecordingMicroAllocator] Arena allocation head 13520 bytes"]
    assert targets.arena_from_report(lines) == 16880
    assert targets.arena_from_report(["nothing"]) is None


def test_a_device_is_parsed_and_a_result_fits_it_or_says_why():
    device = targets.parse_device("mcu:ram=64KB,flash=256KB")
    assert (device["kind"], device["ram_bytes"], device["flash_bytes"]) == ("mcu", 64_000, 256_000)
    assert targets.parse_device("mcu:ram=64KiB")["ram_bytes"] == 65_536
    assert targets.parse_device("gpu")["kind"] == "gpu"
    small = {"micro": {"runs": True, "arena_bytes": 17_000, "flash_bytes": 64_000}}
    assert targets.fits(small, device) == (True, None)
    big = {"micro": {"runs": True, "arena_bytes": 70_000, "flash_bytes": 300_000}}
    ok, why = targets.fits(big, device)
    assert not ok and why == "arena 70.0 kB > RAM 64.0 kB; model 300.0 kB > flash 256.0 kB"
    assert targets.fits({"micro": {"runs": False, "reason": "Hybrid models"}}, device) == (False, "Hybrid models")
    assert targets.fits({}, device)[0] is False and "not checked" in targets.fits({}, device)[1]
    unknown = {"micro": {"runs": True, "arena_bytes": None, "flash_bytes": 64_000}}  # no allocator report
    assert targets.fits(unknown, device) == (False, "its arena was not measured, so it is not known to fit the RAM")
    assert targets.fits(unknown, targets.parse_device("mcu:flash=256KB")) == (True, None)  # RAM not asked


@pytest.mark.parametrize("text, message", [
    ("tpu", "Unknown target 'tpu'; use mcu:ram=64KB"),
    ("mcu:ram=64XB", "Cannot read 'ram=64XB' in target 'mcu:ram=64XB'"),
    ("mcu:rom=4KB", "Cannot read 'rom=4KB'"),
    ("gpu:ram=1MB", "Cannot read 'ram=1MB'"),
])
def test_a_device_that_cannot_be_read_is_refused_with_what_to_write(text, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        targets.parse_device(text)


def test_the_cli_refuses_a_bad_target_with_exit_2(capsys):
    from optlib.cli import main

    assert main(["search", "--model", "digits_cnn", "--data", "digits", "--target", "mcu:ram=lots"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Cannot read 'ram=lots'") and "Traceback" not in err


def test_a_model_over_the_micro_size_cap_is_not_run_on_tflm_and_says_why(monkeypatch):
    monkeypatch.setenv("OPTLIB_MICRO_MAX_MB", "0.001")  # 1 kB: any model is over it
    entry = targets.micro(b"TFL3" + bytes(5000))
    assert entry["runs"] is False and entry["flash_bytes"] == 5004
    assert entry["reason"].startswith("not run: the model's 5.0 kB is over the 1.0 kB this check runs")
    assert "OPTLIB_MICRO_MAX_MB" in entry["reason"]
    monkeypatch.setenv("OPTLIB_MICRO_MAX_MB", "lots")
    with pytest.raises(InputError, match="OPTLIB_MICRO_MAX_MB='lots' must be a number"):
        targets.micro(b"")


def _abort_like_tflm(*_):
    """What TFLM's C++ did on MobileNetV2's int8 file: abort the process it runs in."""
    import os

    os.abort()


def test_tflm_aborting_costs_only_the_micro_check_and_the_next_check_runs(tiny, monkeypatch):
    made, x, y = tiny
    with monkeypatch.context() as patched:
        patched.setattr(targets, "micro", _abort_like_tflm)  # what the helper runs for the check
        aborted = targets.check(made["int8_io"], x[:20], y[:20])["micro"]
    assert aborted["runs"] is False and aborted["flash_bytes"] == len(made["int8_io"])
    assert aborted["reason"] == ("TensorFlow Lite for Microcontrollers stopped its process on this model "
                                 "(it was killed by SIGABRT)")
    after = targets.check(made["int8_io"], x[:20], y[:20])["micro"]  # this process lives on, and so does TFLM
    assert after["runs"] is True and after["samples"] == 20


@pytest.mark.timeout(300)  # a hang guard: a helper that was not stopped would sleep out its 600 s
def test_a_hung_tflm_is_stopped_after_its_time(tiny):
    from optlib.engine import micro_process

    made, _, _ = tiny
    with pytest.raises(micro_process.Stopped, match="^not finished after 1 s on TensorFlow Lite for Microcontrollers"):
        micro_process.run(_sleep_like_a_hung_tflm, made["int8_io"], timeout_s=1)
    assert micro_process.run(len, b"four") == 4  # the hung helper is gone: the next check starts a new one


def _sleep_like_a_hung_tflm(*_):
    import time

    time.sleep(600)


def test_a_python_error_in_the_micro_check_is_the_checks_failure_not_the_models(tiny, monkeypatch):
    from optlib.engine import micro_process

    made, _, _ = tiny
    with pytest.raises(micro_process.CheckFailed, match="TypeError: len"):
        micro_process.run(len, made["int8_io"], None)  # len(tflite, None): a TypeError in the helper

    def raising(*_):
        raise micro_process.CheckFailed("ValueError: cannot reshape array")

    monkeypatch.setattr(micro_process, "run", raising)
    assert targets.check(made["int8_io"])["micro"] == {
        "runs": None, "reason": "the Microcontroller (TFLM) check failed: ValueError: cannot reshape array"}


def test_the_tflm_helper_dies_with_the_process_that_started_it_even_in_the_middle_of_a_check():
    """A worker stopped by its memory watchdog (SIGKILL) leaves no TFLM process behind, even a hung one."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    asking = subprocess.Popen(
        [sys.executable, "-c", "import threading, time; from optlib.engine import micro_process as m; "
         "from test_targets import _sleep_like_a_hung_tflm as hang; "
         "threading.Thread(target=m.run, args=(hang, b'TFL3'), daemon=True).start(); "
         "time.sleep(3); print(m._helper.process.pid, flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    helper = int(asking.stdout.readline())
    assert psutil.pid_exists(helper)
    asking.send_signal(signal.SIGKILL)
    asking.wait(10)
    for _ in range(100):
        if not psutil.pid_exists(helper) or psutil.Process(helper).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the TFLM helper {helper} outlived the process that started it")


def test_a_paused_micro_helper_keeps_its_whole_subset(monkeypatch):
    """The TFLM helper is paused (SIGSTOP) while another worker times a latency: the wall clock runs on, its
    CPU time does not; the subset is not cut short by the pause."""
    import itertools

    import numpy as np

    class Interpreter:  # one float input, two class scores
        def get_input_details(self, index):
            return {"shape": (1, 2), "dtype": np.float32}

        def get_output_details(self, index):
            return {"dtype": np.float32}

        def set_input(self, value, index):
            self.value = value

        def invoke(self):
            pass

        def get_output(self, index):
            return self.value

    wall = itertools.count(0, 60.0)  # a minute of wall time between two reads: a long pause
    monkeypatch.setattr(targets.time, "perf_counter", lambda: next(wall))
    x = np.eye(2, dtype=np.float32)[np.arange(30) % 2]
    found = targets._micro_accuracy(Interpreter(), x, np.arange(30) % 2, None)
    assert found["samples"] == 30 and found["accuracy"] == 1.0
