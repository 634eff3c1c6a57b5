"""Table 1 / Table 2 comparisons: published cells equal the seed text; local rows and ratios are right."""

import math
from pathlib import Path

import pandas as pd
import pytest

from optlib import report, tables

SEED = Path(__file__).resolve().parents[2].parent / "shared" / "seeds" / "000_c3c454f1a6893647.txt"


def _row(scheme, model="mobilenet_v2", dataset="digits", size=1e6, latency=10.0, accuracy=None, trained=False,
         run_id=1, status="ok"):
    return {"id": run_id, "scheme": scheme, "status": status, "model": model, "dataset": dataset,
            "size_bytes": int(size), "gzip_bytes": int(size * 0.9), "accuracy": accuracy, "trained": trained,
            "threads": 1, "latency_ms": {"median": latency, "p90": latency, "std": 0.1}}


@pytest.fixture
def local():
    return report.frame([_row("float32", size=13_922_088, latency=8.0, run_id=1),
                         _row("int8", size=3_942_064, latency=4.0, run_id=2)])


def test_every_published_table1_cell_shown_equals_the_seed_text(local):
    seed = SEED.read_text()
    shown = tables.display(tables.table1_comparison(local))
    published = shown[shown["Source"] == tables.PUBLISHED]
    assert len(published) == 4
    for row in published.to_dict("records"):
        cells = [row[c] for c in tables.TEXT_COLUMNS]
        line = row["Model"] + "".join(cells[:3]) + " " + "".join(cells[3:])
        assert line in seed, line


def test_every_published_table2_cell_shown_equals_the_seed_text():
    seed = SEED.read_text()
    shown = tables.display(tables.table2_comparison(pd.DataFrame()))
    assert len(shown) == 6
    for row in shown.to_dict("records"):
        line = (row["Model"] + row["Accuracy metric type"] + row["Accuracy (float32 activations)"]
                + row["Accuracy (int8 activations)"] + " " + row["Accuracy (int16 activations)"])
        assert line in seed, line


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
