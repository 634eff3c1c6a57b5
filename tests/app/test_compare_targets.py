"""Compare: the targets matrix (runs x targets, yes or no with the reason) and the microcontroller filter."""

from apphelpers import canned_metrics, put_run, texts

# Shaped like the digits_cnn runs' measured targets (tests/unit/test_targets.py measures real ones).
YES = {"runs": True, "reason": None}
MICRO = {"int8": {"runs": True, "reason": None, "arena_bytes": 16_880, "flash_bytes": 64_048, "accuracy": 0.97,
                  "litert_accuracy": 0.97, "samples": 200},
         "float32": {"runs": True, "reason": None, "arena_bytes": 56_768, "flash_bytes": 230_400, "accuracy": 0.97,
                     "litert_accuracy": 0.97, "samples": 200},
         "dynamic": {"runs": False, "reason": "Hybrid models are not supported on TFLite Micro.",
                     "arena_bytes": None, "flash_bytes": 64_216}}
NOT_INTEGER = {"runs": False, "reason": "8 of 8 ops compute in float32: CONV_2D x2; input is float32"}


def _store(home):
    from optlib.engine.store import Store

    store = Store()
    for scheme, micro in MICRO.items():
        found = {"cpu": {**YES, "tensor_bytes": 1000}, "gpu": YES, "micro": micro,
                 "integer_only": YES if scheme == "int8" else NOT_INTEGER}
        put_run(store, scheme, "digits_cnn", "m-fp", "digits", "d-fp", metrics={**canned_metrics(scheme),
                                                                                   "targets": found})
    put_run(store, "float16", "digits_cnn", "m-fp", "digits", "d-fp", metrics=canned_metrics("float16"))  # no targets


def test_the_targets_matrix_says_yes_or_no_with_the_reason(app, home):
    _store(home)
    at = app("compare.py")
    assert not at.exception
    assert "Where it runs" in [s.value for s in at.subheader]
    matrix = next(d.value for d in at.dataframe if "Microcontroller (TFLM)" in d.value.columns).set_index("Scheme")
    assert matrix.loc["int8", "Integer-only accelerator"] == "yes"
    assert matrix.loc["float32", "Integer-only accelerator"].startswith("no: 8 of 8 ops compute in float32")
    assert matrix.loc["dynamic", "Microcontroller (TFLM)"] == "no: Hybrid models are not supported on TFLite Micro."
    assert matrix.loc["int8", "TFLM arena"] == "16.9 kB" and matrix.loc["int8", "Flash"] == "64.0 kB"
    assert matrix.loc["float16", "GPU delegate"].startswith("not checked")
    assert "no vendor compiler is run" in texts(at.caption)


def test_the_microcontroller_filter_narrows_the_results(app, home):
    _store(home)
    at = app("compare.py")
    at.toggle(key="compare_mcu_on").set_value(True).run()  # 64 kB RAM, 256 kB flash
    assert not at.exception
    assert "2 of 4 finished runs run on a microcontroller (TFLite Micro) with ram 64.0 kB and flash 256.0 kB" \
        in texts(at.caption)
    assert set(at.dataframe[0].value["Scheme"]) == {"int8", "float32"}  # Table 1 follows the filter
    at.number_input(key="compare_mcu_ram").set_value(32).run()
    assert "1 of 4 finished runs" in texts(at.caption)
    assert set(at.dataframe[0].value["Scheme"]) == {"int8"}
    matrix = next(frame.value for frame in at.dataframe if "Microcontroller (TFLM)" in frame.value.columns)
    assert len(matrix) == 4  # the matrix keeps every run: it says why the others do not fit
    at.number_input(key="compare_mcu_ram").set_value(8).run()
    assert not at.exception and "No finished run matches these filters" in texts(at.info)


def test_two_runs_of_one_scheme_read_apart_by_their_settings(app, home):
    from optlib.engine import schemes
    from optlib.engine.store import Store

    _store(home)
    settings = {**schemes.settings_for("int8"), "int8_io": True}
    put_run(Store(), "int8", "digits_cnn", "m-fp", "digits", "d-fp", settings=settings,
            metrics={**canned_metrics("int8"), "targets": {"integer_only": YES}})
    at = app("compare.py")
    matrix = next(d.value for d in at.dataframe if "Microcontroller (TFLM)" in d.value.columns)
    int8 = matrix[matrix["Scheme"].eq("int8")]
    assert sorted(int8["Settings"]) == ["", "int8_io=True"]
    assert list(int8[int8["Settings"].eq("int8_io=True")]["Integer-only accelerator"]) == ["yes"]


TFLM_ASSERT = ("input->type == kTfLiteInt8 || input->type == kTfLiteInt16 || input->type == kTfLiteUInt8 was not "
               "true.; Node DEQUANTIZE (number 0) failed to prepare with status 1")


def test_where_it_runs_is_a_compact_yes_no_matrix_in_plain_words_with_the_raw_message_on_demand(app, home):
    from optlib.engine.store import Store

    _store(home)
    float_io = {"runs": False, "reason": "input is float32; output is float32 (int8 with int8_io=true makes them "
                                         "integer)", "input_type": "float32", "output_type": "float32"}
    put_run(Store(), "int16x8", "digits_cnn", "m-fp", "digits", "d-fp", metrics={
        **canned_metrics("int16x8"), "targets": {"cpu": YES, "gpu": YES, "integer_only": NOT_INTEGER,
                                                 "micro": {"runs": False, "reason": TFLM_ASSERT}}})
    put_run(Store(), "int8", "mobilenet_v2", "mn-fp", "digits", "d-fp", metrics={
        **canned_metrics("int8"), "targets": {"integer_only": float_io}})
    at = app("compare.py")
    at.multiselect(key="compare_filter_model").set_value(["digits_cnn", "mobilenet_v2"]).run()
    assert not at.exception
    matrices = [t.value for t in at.table if list(t.value.columns) == ["Scheme", "CPU", "GPU", "Integer-only",
                                                                     "Microcontroller"]]
    assert len(matrices) == 2  # one per model, only the four targets beside the scheme
    digits = matrices[0].set_index("Scheme")
    assert digits.loc["int8", "Integer-only"] == "yes"
    assert digits.loc["int8", "Microcontroller"] == "yes — arena 16.9 kB, flash 64.0 kB"
    assert digits.loc["float32", "Integer-only"] == "no — needs integer ops; 8 of 8 compute in float32"
    assert digits.loc["dynamic", "Microcontroller"] == ("no — needs full int8; this model is hybrid (int8 weights, "
                                                        "float math)")
    assert digits.loc["int16x8", "Microcontroller"] == "no — needs int8 input at DEQUANTIZE; this model gives it float"
    assert "not checked" in set(digits["GPU"])  # the float16 run without targets
    assert matrices[1].set_index("Scheme").loc["int8", "Integer-only"] == ("no — needs int8 input; this model "
                                                                          "takes float32")
    cells = " ".join(" ".join(m.astype(str).to_numpy().ravel()) for m in matrices)
    for internal in ("kTfLite", "was not true", "Node ", "status 1", "None", "nan"):
        assert internal not in cells
    raw = next(d.value for d in at.dataframe if "Microcontroller (TFLM)" in d.value.columns)
    assert f"no: {TFLM_ASSERT}" in set(raw["Microcontroller (TFLM)"])  # the engine's own words, one click away
    assert "The engine's own messages, and the microcontroller's accuracy" in [e.label for e in at.expander]
