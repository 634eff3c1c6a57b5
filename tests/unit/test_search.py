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
    assert result["explanation"].startswith(f"{best['scheme']} meets the target")
    # One worker process loaded TensorFlow, the model and the data for the baseline and every trial.
    assert len({row["pid"] for row in store.rows()}) == 1


def test_an_impossible_target_returns_the_closest_candidate_and_says_so(store):
    result = search("digits_cnn", "digits", max_loss=-0.5, trials=2, store=store, overrides=FAST)
    assert result["met"] is False
    assert result["best"]["scheme"] in ("int8", "dynamic") and result["best"]["met"] is False
    assert result["explanation"].startswith("No candidate met the target")
    assert all("loses" in t["verdict"] for t in result["trail"])


def test_bad_search_arguments_are_refused():
    with pytest.raises(InputError, match="Unknown objective 'speed'; use one of size, latency, mix"):
        search("digits_cnn", "digits", objective="speed")


def test_workers_opened_for_one_model_refuse_another(store, tiny_model_path, digits_npz):
    from optlib.engine import executor, sweep

    model_src, data_src, _ = sweep.plan("digits_cnn", "digits")
    with executor.Workers(model_src, data_src, False, store) as workers:
        with pytest.raises(ValueError, match="another model"):
            sweep.run(str(tiny_model_path), str(digits_npz), "float32", FAST, store, workers=workers)
        assert workers.pool == []  # refused before any worker started
