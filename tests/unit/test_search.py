"""Accuracy-targeted search on the built-in model."""

import pytest

from optlib.errors import InputError
from optlib.analysis.search import search
from optlib.engine.store import Store

FAST = {"runs": "3", "warmup": "1", "rep_samples": "100"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return Store(tmp_path_factory.mktemp("search") / "r.sqlite")


def test_search_finds_a_smaller_model_within_the_target_and_explains_its_trail(store):
    result = search("digits_cnn", "digits", max_loss=0.01, objective="size", trials=2, store=store, overrides=FAST)
    assert result["met"] is True
    best = result["best"]
    assert best["accuracy"] >= result["target"]["min_accuracy"]
    assert best["size_bytes"] < result["baseline"]["size_bytes"] / 3
    assert [t["scheme"] for t in result["trail"]] == ["int8", "dynamic"]
    assert all(t["verdict"] for t in result["trail"])
    assert result["explanation"].startswith(f"{best['scheme']} meets the target (top-1 {best['accuracy']:.1%}, ")
    # One worker process loaded TensorFlow, the model and the data for the baseline and every trial.
    assert len({row["pid"] for row in store.rows()}) == 1


def test_an_impossible_target_returns_the_closest_candidate_and_says_so(store):
    result = search("digits_cnn", "digits", max_loss=-0.5, trials=2, store=store, overrides=FAST)
    assert result["met"] is False
    assert result["best"]["scheme"] in ("int8", "dynamic") and result["best"]["met"] is False
    assert result["explanation"].startswith("No candidate met the target")
    assert all("loses" in t["verdict"] for t in result["trail"])


def test_the_search_on_a_regression_model_keeps_mae_within_the_loss_and_lower_is_better(store):
    result = search("diabetes_mlp", "diabetes", max_loss=0.01, objective="size", trials=2, store=store,
                    overrides=FAST)
    base, target = result["baseline"], result["target"]
    assert (base["metric_name"], base["higher_is_better"], base["accuracy"]) == ("MAE", False, None)
    assert target["bound"] == pytest.approx(base["metric_value"] * 1.01)  # a ceiling: MAE may grow by 1%
    for trial in (t for t in result["trail"] if t["status"] == "ok"):
        assert trial["met"] == (trial["metric_value"] <= target["bound"] + 1e-9)
        assert trial["loss"] == pytest.approx((trial["metric_value"] - base["metric_value"]) / base["metric_value"])
    assert result["met"] and f"(MAE {result['best']['metric_value']:.4g}, a loss of" in result["explanation"]


def test_bad_search_arguments_are_refused():
    with pytest.raises(InputError, match="Unknown objective 'speed'; use one of size, latency, mix"):
        search("digits_cnn", "digits", objective="speed")


def test_open_workers_are_kept_for_the_same_inputs_and_replaced_for_others(store, tiny_model_path, digits_npz,
                                                                            tmp_path):
    import numpy as np

    from optlib.engine import executors, sweep

    fewer = tmp_path / "fewer.npz"
    with np.load(digits_npz) as arrays:
        np.savez(fewer, **{name: arrays[name][:100] for name in arrays.files})
    with executors.LocalWorkers(count=1) as workers:
        first = sweep.run(str(tiny_model_path), str(digits_npz), "float32", FAST, store, executor=workers)
        again = sweep.run(str(tiny_model_path), str(digits_npz), "float16", FAST, store, executor=workers)
        other = sweep.run(str(tiny_model_path), str(fewer), "float32", FAST, store, executor=workers)
    pids = [r["results"][0]["pid"] for r in (first, again, other)]
    assert pids[0] == pids[1] != pids[2]  # one worker for the same inputs; new inputs, a new worker
    assert other["results"][0]["accuracy_samples"] == 100  # ... that loaded the other data
    assert workers.pool == []


def test_a_microcontroller_target_returns_the_best_model_that_fits(store):
    from optlib.engine import targets

    device = targets.parse_device("mcu:ram=64KB,flash=256KB")
    result = search("digits_cnn", "digits", max_loss=0.01, trials=2, store=store, overrides=FAST, device=device)
    assert result["met"] is True and result["best"]["scheme"] == "int8" and result["best"]["fits"] is True
    assert result["target"]["device"] == device
    dynamic = next(t for t in result["trail"] if t["scheme"] == "dynamic")
    assert dynamic["fits"] is False and "Hybrid models are not supported" in dynamic["verdict"]


def test_a_microcontroller_too_small_for_every_candidate_says_none_fit_and_why(store):
    from optlib.engine import targets

    device = targets.parse_device("mcu:ram=2KB")
    result = search("digits_cnn", "digits", max_loss=0.01, trials=2, store=store, overrides=FAST, device=device)
    assert result["met"] is False and result["best"] is None
    assert result["explanation"].startswith("No candidate runs on a microcontroller (TFLite Micro) with ram 2.0 kB: "
                                            "int8 (arena ")
    assert "> RAM 2.0 kB" in result["explanation"] and "dynamic (" in result["explanation"]


def test_a_target_search_measures_again_a_stored_result_from_before_targets(store):
    from optlib.engine import targets

    device = targets.parse_device("mcu:ram=64KB,flash=256KB")
    search("digits_cnn", "digits", max_loss=0.01, trials=2, store=store, overrides=FAST)  # int8 stored (or served)
    stored = {row["id"]: row for row in store.rows(scheme="int8", status="ok")}
    assert stored
    for run_id in stored:  # as if stored by an older optlib: no targets
        with store._connect() as db:
            metrics = dict(stored[run_id]["metrics"])
            metrics.pop("targets", None)
            db.execute("UPDATE runs SET metrics=? WHERE id=?", (__import__("json").dumps(metrics), run_id))
    result = search("digits_cnn", "digits", max_loss=0.01, trials=2, store=store, overrides=FAST, device=device)
    assert result["best"]["scheme"] == "int8" and result["best"]["fits"] is True  # not "not checked"
    assert result["best"]["id"] not in stored  # a new run, with its targets measured
