"""Byte sizes: decimal kB and MB everywhere (1 kB = 1,000 bytes), as the guide's Table 1 gives MB."""

import math

import pytest

from optlib import cli, units
from optlib.analysis import explain, report
from optlib.views import insight_charts


@pytest.mark.parametrize("size, text", [
    (0, "0 B"), (812, "812 B"), (999, "999 B"), (1_000, "1.0 kB"), (1_024, "1.0 kB"), (12_345, "12.3 kB"),
    (64_376, "64.4 kB"), (230_400, "230.4 kB"), (999_949, "999.9 kB"), (999_950, "1.00 MB"),
    (3_940_000, "3.94 MB"), (13_922_088, "13.92 MB"), (2_500_000_000, "2.50 GB"),
])
def test_format_bytes_is_decimal(size, text):
    assert units.format_bytes(size) == text


@pytest.mark.parametrize("missing", [None, math.nan])
def test_format_bytes_of_nothing_measured(missing):
    assert units.format_bytes(missing) == "—"


def test_one_convention_for_the_constants():
    assert units.KB == 1_000 and units.MB == 1_000_000 and report.MB == units.MB and insight_charts.KB == units.KB


def _row(scheme, size, gz):
    return {"scheme": scheme, "status": "ok", "accuracy": 0.97, "size_bytes": size, "gzip_bytes": gz,
            "latency_ms": {"median": 0.012}, "sparsity": 0.0}


def test_cli_table_writes_sizes_in_decimal_units():
    table = cli.format_table([_row("float32", 230_400, 211_200), _row("int8", 64_376, 57_700),
                              {"scheme": "int16x8", "status": "failed", "error": "RuntimeError: boom"}])
    assert "KB" not in table and "KiB" not in table
    lines = table.splitlines()
    assert "230.4 kB" in lines[1] and "211.2 kB" in lines[1]
    assert "64.4 kB" in lines[2] and "57.7 kB" in lines[2]  # 1024-based it read 62.9 and 56.3
    assert "kB" not in lines[3]  # nothing measured: blank


def test_explanations_write_sizes_in_decimal_units():
    base = {"id": 1, "scheme": "float32", "status": "ok", "size_bytes": 230_400, "gzip_bytes": 211_200,
            "latency_ms": 0.03, "sparsity": 0.0}
    pruned = {**base, "id": 2, "scheme": "prune", "gzip_bytes": 126_000, "sparsity": 0.5}
    notes = " ".join(explain.explain(pruned, base))
    assert "230.4 kB against 230.4 kB for float32" in notes and "126.0 kB against 211.2 kB" in notes


def test_search_trail_labels_sizes_in_kb():
    base = {"accuracy": 0.975, "size_bytes": 230_400, "latency_ms": 0.03, "id": 1}
    trail = [{"scheme": "int8", "label": "int8", "status": "ok", "accuracy": 0.97, "size_bytes": 64_376,
              "latency_ms": 0.012, "verdict": "meets the target", "met": True, "id": 2}]
    table = insight_charts.trail_frame({"baseline": base, "trail": trail})
    assert "Size (kB)" in table.columns and "Size (KB)" not in table.columns
    assert list(table["Size (kB)"]) == pytest.approx([230.4, 64.376])
