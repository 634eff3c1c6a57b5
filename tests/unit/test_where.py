"""Where a run runs, in words (optlib.analysis.where): one short plain-language reason per target."""

import pytest

from optlib.analysis import where

CASES = [
    ("integer_only", {"runs": False, "reason": "8 of 8 ops compute in float32: CONV_2D x2; input is float32"},
     "no — needs integer ops; 8 of 8 compute in float32"),
    ("integer_only", {"runs": False, "reason": "input is float32; output is float32 (int8 with int8_io=true makes "
                                               "them integer)"}, "no — needs int8 input; this model takes float32"),
    ("integer_only", {"runs": False, "reason": "output is float32 (int8 with int8_io=true makes them integer)",
                      "input_type": "int8", "output_type": "float32"},
     "no — needs int8 output; this model gives float32"),
    ("gpu", {"runs": False, "reason": "not on the GPU delegate's op list: ASIN x2, CUSTOM"},
     "no — no GPU kernel for ASIN x2, CUSTOM"),
    ("gpu", {"runs": False, "reason": "int16 activations (the delegate runs float and 8-bit models): CONV_2D x2"},
     "no — needs float or 8-bit; this model has int16 activations"),
    ("micro", {"runs": False, "reason": "input->type == kTfLiteInt8 || input->type == kTfLiteInt16 || input->type "
                                        "== kTfLiteUInt8 was not true.; Node DEQUANTIZE (number 0) failed to "
                                        "prepare with status 1"},
     "no — needs int8 input at DEQUANTIZE; this model gives it float"),
    ("micro", {"runs": False, "reason": "Hybrid models are not supported on TFLite Micro."},
     "no — needs full int8; this model is hybrid (int8 weights, float math)"),
    ("micro", {"runs": False, "reason": "Failed to get registration from op code CUSTOM; Failed starting model "
                                        "allocation."}, "no — no microcontroller kernel for CUSTOM"),
    ("micro", {"runs": False, "reason": "not run: the model's 3.9 MB is over the 1.0 MB this check runs on "
                                        "TensorFlow Lite for Microcontrollers (OPTLIB_MICRO_MAX_MB sets it)"},
     "no — not run: its 3.9 MB is over the 1.0 MB checked"),
    ("micro", {"runs": False, "reason": "TensorFlow Lite for Microcontrollers stopped its process on this model "
                                        "(it was killed by SIGABRT)"}, "no — it stopped on this model (crashed or hung)"),
    ("micro", {"runs": True, "reason": None, "arena_bytes": 15_792, "flash_bytes": 64_048},
     "yes — arena 15.8 kB, flash 64.0 kB"),
    ("micro", {"runs": None, "reason": "the Microcontroller (TFLM) check failed: RuntimeError: boom"},
     "check failed — RuntimeError: boom"),
    ("cpu", {"runs": True, "reason": None}, "yes"),
    ("gpu", None, "not checked"),
]


@pytest.mark.parametrize("name, entry, said", CASES, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(CASES)])
def test_each_target_says_yes_or_no_in_a_few_plain_words(name, entry, said):
    assert where.in_words(name, entry) == said


def test_a_reason_nobody_taught_it_is_cut_short_not_replaced(name="micro"):
    raw = "Some new TFLM complaint about a tensor that goes on and on about its shape and type and quantization"
    cell = where.in_words(name, {"runs": False, "reason": raw})
    assert cell.startswith("no — Some new TFLM complaint") and cell.endswith("…") and len(cell) < 80
