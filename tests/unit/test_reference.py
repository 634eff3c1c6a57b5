"""The reference CSVs must match, cell for cell, the tables in the seed documents."""

import csv
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from optlib.guide import reference

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO.parent / "shared" / "seeds"
TEXT_SEED = SEEDS / "000_c3c454f1a6893647.txt"
HTML_SEED = SEEDS / "001_f03a66b82afc1551.txt"

TABLE1_CELLS = (
    "top1_original",
    "top1_ptq",
    "top1_qat",
    "latency_original_ms",
    "latency_ptq_ms",
    "latency_qat_ms",
    "size_original_mb",
    "size_optimized_mb",
)
TABLE2_CELLS = ("float32_text", "int8_text", "int16_text")


def raw_rows(name):
    """The CSV exactly as written, every cell a string ("0.70" stays "0.70")."""
    with open(reference.REFERENCE_DIR / name, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def published(cell):
    return cell or "N/A"


@pytest.fixture(scope="module")
def seed_text():
    return TEXT_SEED.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def html_rows():
    html = HTML_SEED.read_text(encoding="utf-8")
    rows = [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", html)]
    return {cells[0]: cells[1:] for cells in rows if cells}


def test_seed_headers_and_titles_match_the_column_order(seed_text):
    # The CSV column order follows these header lines.
    assert (
        "Model Top-1 Accuracy (Original) Top-1 Accuracy (Post Training Quantized) "
        "Top-1 Accuracy (Quantization Aware Training) Latency (Original) (ms) "
        "Latency (Post Training Quantized) (ms) Latency (Quantization Aware Training) (ms) "
        "Size (Original) (MB) Size (Optimized) (MB)\n"
    ) in seed_text
    assert (
        "Model Accuracy metric type Accuracy (float32 activations) "
        "Accuracy (int8 activations) Accuracy (int16 activations)\n"
    ) in seed_text
    assert reference.TABLE1_TITLE + "\n" in seed_text
    assert reference.TABLE2_TITLE + "\n" in seed_text
    assert "Pixel 2 devices using a single big core CPU" in seed_text


@pytest.mark.parametrize("row", raw_rows("table1.csv"), ids=lambda row: row["model"])
def test_table1_row_occurs_verbatim_in_seed_text(row, seed_text):
    cells = [published(row[c]) for c in TABLE1_CELLS]
    # The seed runs cells together: name + accuracies, a space, latencies + sizes.
    line = row["model"] + "".join(cells[:3]) + " " + "".join(cells[3:]) + "\n"
    assert "\n" + line in seed_text


@pytest.mark.parametrize("row", raw_rows("table1.csv"), ids=lambda row: row["model"])
def test_table1_row_matches_the_html_table(row, html_rows):
    assert html_rows[row["model"]] == [published(row[c]) for c in TABLE1_CELLS]


def test_html_table_has_no_row_missing_from_table1(html_rows):
    assert set(html_rows) == {row["model"] for row in raw_rows("table1.csv")}


@pytest.mark.parametrize("row", raw_rows("table2.csv"), ids=lambda row: row["model"])
def test_table2_row_occurs_verbatim_in_seed_text(row, seed_text):
    f32, i8, i16 = (row[c] for c in TABLE2_CELLS)
    line = row["model"] + row["metric"] + f32 + i8 + " " + i16 + "\n"
    assert "\n" + line in seed_text


def test_table1_shape_names_and_source():
    df = reference.table1()
    assert list(df["model"]) == [
        "Mobilenet-v1-1-224",
        "Mobilenet-v2-1-224",
        "Inception_v3",
        "Resnet_v2_101",
    ]
    assert list(df["zoo_model"]) == ["mobilenet_v1", "mobilenet_v2", "inception_v3", "resnet_v2_101"]
    assert set(df["source"]) == {TEXT_SEED.name}
    assert df.attrs["title"] == reference.TABLE1_TITLE


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
    assert set(df["source"]) == {TEXT_SEED.name}
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
