"""Explanations quote the measured figures."""

from optlib.explain import explain


def row(scheme, size, gzip, latency, **extra):
    return {"scheme": scheme, "status": "ok", "size_bytes": size, "gzip_bytes": gzip,
            "latency_ms": {"median": latency}, **extra}


BASE = row("float32", 200_000, 180_000, 8.0)


def test_dynamic_slower_than_float32_is_explained_with_both_latencies():
    notes = explain(row("dynamic", 55_000, 50_000, 14.6), BASE)
    assert len(notes) == 1 and notes[0].startswith("Why is this slower? Dynamic range takes 14.6 ms against 8 ms")
    assert "1.8x slower" in notes[0] and "28% of the space" in notes[0]


def test_pruning_that_only_shrinks_the_download_is_explained():
    notes = explain(row("prune", 200_000, 110_000, 8.0, sparsity=0.5), BASE)
    assert notes == [
        "Why didn't this shrink? prune zeroes 50% of the weights, but TFLite stores them densely: the file is "
        "200.0 KB against 200.0 KB for float32. Compressed for download it is 110.0 KB against 180.0 KB (39% "
        "smaller): pruned and clustered models gain only from compression [000_c3c454f1a6893647.txt]."]


def test_nothing_to_explain():
    assert explain(row("int8", 55_000, 50_000, 4.0), BASE) == []
    assert explain(BASE, BASE) == []
    assert explain(row("int8", 1, 1, 1.0), None) == []
