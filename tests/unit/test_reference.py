"""The reference tables as optlib.analysis.reference loads them from assets/reference/.

Whether the CSVs match the source documents cell for cell is checked in
test_reference_sources.py, which runs only in the developers' checkout.
"""

import math
import re
import subprocess
import sys

from optlib.analysis import reference

TABLE1_CELLS = reference.TABLE1_NUMERIC  # the published figures, in the guide's column order


def test_table1_shape_names_and_source():
    df = reference.table1()
    assert list(df["model"]) == [
        "Mobilenet-v1-1-224",
        "Mobilenet-v2-1-224",
        "Inception_v3",
        "Resnet_v2_101",
    ]
    assert list(df["zoo_model"]) == ["mobilenet_v1", "mobilenet_v2", "inception_v3", "resnet_v2_101"]
    assert set(df["source"]) == {"https://www.tensorflow.org/lite/performance/model_optimization"}
    assert df.attrs["title"] == reference.TABLE1_TITLE
    assert df.attrs["url"] == reference.URL


def test_table1_na_cells_are_missing_not_zero():
    df = reference.table1().set_index("model")
    missing = [(m, c) for m in df.index for c in TABLE1_CELLS if math.isnan(df.loc[m, c])]
    assert missing == [("Resnet_v2_101", "top1_qat"), ("Resnet_v2_101", "latency_qat_ms")]
    assert not (df[list(TABLE1_CELLS)] == 0).any().any()


def test_table1_parsed_values():
    df = reference.table1().set_index("model")
    assert df.loc["Mobilenet-v1-1-224", "top1_qat"] == float("0.70")
    assert df.loc["Mobilenet-v1-1-224", "size_original_mb"] == float("16.9")
    assert df.loc["Mobilenet-v2-1-224", "latency_ptq_ms"] == float("98")
    assert df.loc["Mobilenet-v2-1-224", "size_original_mb"] == float("14")
    assert df.loc["Inception_v3", "top1_original"] == float("0.78")
    assert df.loc["Inception_v3", "latency_original_ms"] == float("1130")
    assert df.loc["Resnet_v2_101", "top1_original"] == float("0.770")
    assert df.loc["Resnet_v2_101", "size_optimized_mb"] == float("44.9")


def test_table2_shape_names_and_metric_direction():
    df = reference.table2()
    assert list(df["model"]) == [
        "Wav2letter",
        "DeepSpeech 0.5.1 (unrolled)",
        "YoloV3",
        "MobileNetV1",
        "MobileNetV2",
        "MobileBert",
    ]
    assert dict(zip(df["metric"], df["lower_is_better"])) == {
        "WER": True,
        "CER": True,
        "mAP(IOU=0.5)": False,
        "Top-1 Accuracy": False,
        "F1(Exact match)": False,
    }
    assert set(df["source"]) == {reference.URL}
    assert df.attrs["title"] == reference.TABLE2_TITLE


def test_table2_numbers_are_parsed_from_the_published_text():
    df = reference.table2()
    for _, row in df.iterrows():
        for precision in ("float32", "int8", "int16"):
            text = row[f"{precision}_text"]
            value, exact = re.fullmatch(r"([\d.]+)%?(?:\(([\d.]+)\))?", text).groups()
            assert row[precision] == float(value), text
            if exact is None:
                assert math.isnan(row[f"{precision}_exact_match"]), text
            else:
                assert row[f"{precision}_exact_match"] == float(exact), text


def test_table2_parsed_values():
    df = reference.table2().set_index("model")
    assert df.loc["Wav2letter", "float32"] == float("6.7")
    assert df.loc["DeepSpeech 0.5.1 (unrolled)", "int8"] == float("43.67")
    assert df.loc["YoloV3", "int16"] == float("0.574")
    assert df.loc["MobileNetV1", "float32"] == float("0.7062")
    assert df.loc["MobileNetV2", "int8"] == float("0.7126")
    assert df.loc["MobileBert", "float32"] == float("88.81")
    assert df.loc["MobileBert", "float32_exact_match"] == float("81.23")
    assert df.loc["MobileBert", "int8_exact_match"] == float("0")
    assert df.loc["MobileBert", "int16_exact_match"] == float("81.15")


def test_importing_the_module_loads_neither_pandas_nor_tensorflow():
    # Load the file on its own so that whatever optlib/__init__.py imports
    # does not count against this module.
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('ref', {reference.__file__!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted({'pandas', 'tensorflow', 'streamlit'} & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
