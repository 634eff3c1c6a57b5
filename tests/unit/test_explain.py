"""Explanations quote the measured figures."""

from optlib.analysis import report
from optlib.analysis.explain import explain, explanations
from rows import short_result


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
        "200.0 kB against 200.0 kB for float32. Compressed for download it is 110.0 kB against 180.0 kB (39% "
        "smaller): pruned and clustered models gain only from compression [TensorFlow Lite guide: Model "
        "optimization]."]


def test_nothing_to_explain():
    assert explain(row("int8", 55_000, 50_000, 4.0), BASE) == []
    assert explain(BASE, BASE) == []
    assert explain(row("int8", 1, 1, 1.0), None) == []


# --- Every run of a frame, against the float32 run of its model ----------------------------------

def test_explanations_quote_each_run_against_the_float32_run_of_its_model():
    rows = [short_result("float32", 1, 0.975, 230_400, 0.030, gzip=211_200),
            short_result("int8_selective", 2, 0.975, 80_000, 0.045),
            short_result("prune", 3, 0.97, 230_400, 0.029, gzip=126_000, sparsity=0.5, max_unique_weights=255),
            short_result("int8", 4, 0.97, 64_000, 0.012),
            short_result("int8", 5, 0.97, 64_000, 0.5, model="other")]  # no float32 of its model: nothing said
    df = report.frame(rows)
    found = explanations(df)
    notes = {f["scheme"]: f["notes"] for f in found}
    assert sorted((f["id"], f["scheme"]) for f in found) == [(2, "int8_selective"), (3, "prune")]
    assert notes["int8_selective"][0].startswith(
        "Why is this slower? Selective int8 takes 0.045 ms against 0.03 ms for float32 (1.5x slower) on this machine")
    assert "kept in float" in notes["int8_selective"][0]
    assert notes["prune"][0].startswith("Why didn't this shrink? prune zeroes 50% of the weights")
    # The baseline may sit outside the shown runs (e.g. a scheme filter): it is taken from the pool.
    shown = df[df["scheme"] == "int8_selective"]
    assert [f["id"] for f in explanations(shown, pool=df)] == [2]
    assert explanations(shown) == []


def test_a_speed_up_is_said_the_right_way_round():
    from optlib.analysis.explain import speed_phrase

    assert speed_phrase(2.5) == "2.5× faster"
    assert speed_phrase(1 / 1.9) == "1.9× slower"  # was shown as "0.5× faster"
    assert speed_phrase(1.02) == "as fast" and speed_phrase(1.02, "float32") == "as fast as float32"
    assert speed_phrase(0.5, "float32") == "2.0× slower than float32"
    assert speed_phrase(float("nan")) is None and speed_phrase(None) is None


def test_a_baseline_at_chance_is_called_out_with_both_figures():
    from optlib.analysis.explain import chance_baselines

    rows = [short_result("float32", 1, 0.11, 1000, 1.0, classes=10), short_result("int8", 2, 0.10, 250, 0.5, classes=10),
            short_result("float32", 3, 0.975, 1000, 1.0, model="good", classes=10),
            short_result("float32", 4, 0.12, 1000, 1.0, model="old")]  # stored before classes were recorded
    assert chance_baselines(report.frame(rows)) == [
        "float32 top-1 of digits_cnn on digits is 11.0%, about chance for 10 classes (10.0%): the model is untrained "
        "or does not match this data, so its comparisons say little. Check the model and the data on Model & data."]
