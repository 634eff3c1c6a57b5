"""The store of the browser tests that look at several models: the built-in digits CNN, an uploaded model and
MobileNetV2 (13.9 MB beside 0.2 MB ones, untrained so without accuracy), written the way a real session leaves it.

The rows are written through the store like the sweep's driver writes them, with figures shaped like this
machine's runs: the layout, not the measurement, is under test with it. One app server serves it to every test of
a test process (the ``three_models`` fixture in conftest.py); its tests only read it.
"""

import os
from types import SimpleNamespace

# scheme: (top-1 or None, size, gzip, median ms) per model, shaped like runs on this machine.
FIGURES = {
    "digits_cnn": {"float32": (0.975, 240_340, 211_300, 0.020), "float16": (0.975, 122_600, 107_800, 0.019),
                   "dynamic": (0.975, 66_200, 59_200, 0.011), "int8": (0.975, 66_500, 57_900, 0.012),
                   "int16x8": (0.975, 68_500, 60_000, 0.54), "qat": (0.975, 65_800, 48_700, 0.013),
                   "prune": (0.972, 240_300, 126_000, 0.018), "cluster": (0.981, 240_300, 40_100, 0.018)},
    "uploaded_cnn.keras": {"float32": (0.872, 41_200, 37_100, 0.0040), "float16": (0.872, 22_600, 19_300, 0.0041),
                           "dynamic": (0.872, 13_900, 12_200, 0.0030), "int8": (0.872, 14_300, 11_500, 0.0031),
                           "qat": (0.919, 13_900, 10_900, 0.0031)},
    "mobilenet_v2": {"float32": (None, 13_920_000, 12_900_000, 8.3), "float16": (None, 7_010_000, 6_230_000, 8.1),
                     "dynamic": (None, 3_740_000, 3_540_000, 13.1), "int8": (None, 3_940_000, 3_600_000, 12.1)},
}


TFLM_ASSERT = ("input->type == kTfLiteInt8 || input->type == kTfLiteInt16 || input->type == kTfLiteUInt8 was not "
               "true.; Node DEQUANTIZE (number 0) failed to prepare with status 1")


def targets(scheme, size):
    """Where a run runs, shaped like the checks' entries on this machine (tests/unit/test_targets.py measures them)."""
    integer = scheme in ("int8", "qat")
    micro = ({"runs": False, "reason": f"not run: the model's {size / 1e6:.1f} MB is over the 1.0 MB this check runs "
                                       "on TensorFlow Lite for Microcontrollers (OPTLIB_MICRO_MAX_MB sets it)"}
             if size > 1_000_000 else
             {"runs": False, "reason": TFLM_ASSERT} if scheme == "float16" else
             {"runs": False, "reason": "Hybrid models are not supported on TFLite Micro."} if scheme == "dynamic" else
             {"runs": True, "reason": None, "arena_bytes": size // 4, "flash_bytes": size})
    return {"cpu": {"runs": True, "reason": None},
            "gpu": ({"runs": False, "reason": "int16 activations (the delegate runs float and 8-bit models): CONV_2D x2"}
                    if scheme == "int16x8" else {"runs": True, "reason": None}),
            "integer_only": ({"runs": False, "reason": "input is float32; output is float32 (int8 with int8_io=true "
                                                       "makes them integer)", "input_type": "float32"} if integer else
                             {"runs": False, "reason": "8 of 8 ops compute in float32: CONV_2D x2, FULLY_CONNECTED; "
                                                       "input is float32"}),
            "micro": micro}


def metrics(accuracy, size, gz, latency, scheme):
    return {"targets": targets(scheme, size), "size_bytes": size, "gzip_bytes": gz, "threads": 1, "trained": accuracy is not None, "classes": 10,
            "recipe": {"converter": {"optimizations": [] if scheme == "float32" else ["DEFAULT"]}},
            "data_recipe": {"scale": "x / 16 -> [0, 1]"}, "accuracy": accuracy, "accuracy_samples": 360,
            "latency_ms": {"median": latency, "p90": latency * 1.2, "mean": latency, "std": latency * 0.1,
                           "min": latency * 0.9, "runs": 50, "warmup": 5, "threads": 1},
            "sparsity": 0.0, "max_unique_weights": 255, "build_s": 1.0}


def put_run(store, scheme, model, model_fp, dataset, data_fp, figures):
    """Write one run as the sweep's driver does: a 'running' row, then its Result with the artifact."""
    from optlib.engine import schemes
    from optlib.engine.job import Inputs, Result, Spec
    from optlib.engine.store import run_key

    settings = schemes.settings_for(scheme)
    inputs = Inputs(SimpleNamespace(name=model, fingerprint=model_fp), SimpleNamespace(name=dataset, fingerprint=data_fp))
    spec = Spec(0, scheme, settings, run_key(model_fp, data_fp, scheme, settings))
    run_id = store.start(inputs, spec, "testhost", 1)
    store.finish(run_id, Result(spec, "ok", None, metrics(*figures, scheme), b"TFL3" + bytes(figures[1] // 1000)))


def write_three_models(home):
    """Write the three models' runs into the data folder ``home``'s store."""
    previous = os.environ.get("OPTLIB_HOME")
    os.environ["OPTLIB_HOME"] = str(home)
    try:
        from optlib.engine.store import Store
        from optlib.inputs import data_refs, models

        store = Store()
        for model, schemes in FIGURES.items():
            fingerprint = models.resolve(model).fingerprint if model in models.ZOO else f"{model}-fp"
            dataset = "digits.npz" if model.endswith(".keras") else "digits"
            data_fp = data_refs.resolve("digits").fingerprint if dataset == "digits" else "digits-npz-fp"
            for scheme, figures in schemes.items():
                put_run(store, scheme, model, fingerprint, dataset, data_fp, figures)
    finally:
        if previous is None:
            del os.environ["OPTLIB_HOME"]
        else:
            os.environ["OPTLIB_HOME"] = previous
    return home
