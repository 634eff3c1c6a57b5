"""The scheme registry: names, lookup, selection and settings."""

import pytest

from optlib.engine import schemes
from optlib.errors import InputError

CONTRACT = ("float32", "float16", "dynamic", "int8", "int16x8", "qat", "prune", "cluster",
            "prune_qat", "cluster_qat", "prune_cluster_qat")


def test_names_are_the_contract_in_order():
    assert schemes.names() == CONTRACT


@pytest.mark.parametrize("name", CONTRACT)
def test_every_scheme_is_complete(name):
    scheme = schemes.get(name)
    assert scheme.family in schemes.FAMILIES
    assert scheme.needs in schemes.NEEDS
    assert callable(scheme.build_function())
    settings = schemes.settings_for(name)
    assert {"threads", "runs", "warmup"} <= settings.keys()
    if scheme.needs == "training":
        assert {"epochs", "batch_size", "learning_rate", "seed"} <= settings.keys()


def test_unknown_scheme_lists_the_known_ones():
    with pytest.raises(InputError, match="Unknown scheme 'int4'. Known schemes: float32, float16"):
        schemes.get("int4")


def test_select_all_family_and_list():
    assert schemes.select("all") == list(CONTRACT)
    assert schemes.select("post-training") == list(CONTRACT[:5])
    assert schemes.select("int8, qat,int8") == ["int8", "qat"]
    with pytest.raises(InputError, match="No scheme selected"):
        schemes.select(" , ")


def test_settings_scoped_and_global_overrides():
    prune = schemes.settings_for("prune", {"sparsity": "0.7", "prune.epochs": "3", "qat.epochs": "9"})
    assert prune["sparsity"] == 0.7 and prune["epochs"] == 3
    assert schemes.settings_for("int8", {"int8.int8_io": "true"})["int8_io"] is True
    assert "sparsity" not in schemes.settings_for("int8", {"sparsity": "0.7"})


def test_bad_setting_values_are_explained():
    with pytest.raises(InputError, match="'sparsity' needs a float, got 'lots'"):
        schemes.settings_for("prune", {"sparsity": "lots"})
    with pytest.raises(InputError, match="'centroids' must be one of kmeans_plus_plus"):
        schemes.settings_for("cluster", {"centroids": "magic"})
    with pytest.raises(InputError, match="No scheme has a setting 'sparsty'. Settings: batch_size"):
        schemes.check_overrides({"sparsty": "0.5"})
    with pytest.raises(InputError, match="Scheme 'int8' has no setting 'epochs'. Settings: int8_io, rep_samples, runs"):
        schemes.check_overrides({"int8.epochs": "2"})
    with pytest.raises(InputError, match="Unknown scheme 'int9'"):
        schemes.check_overrides({"int9.epochs": "2"})
    schemes.check_overrides({"epochs": "2", "prune.sparsity": "0.6"})  # fine
    with pytest.raises(InputError, match="Scheme 'int8' has no setting 'clusters'"):
        schemes.settings_for("int8", {"int8.clusters": "4"})


@pytest.mark.parametrize("name", schemes.names(variants=True))
def test_every_entry_carries_its_facts_and_settings_with_ranges(name):
    scheme = schemes.get(name)
    assert scheme.color.startswith("#") and len(scheme.color) == 7
    assert scheme.tradeoff or name == "float32"
    hash(scheme)  # entries are values: usable in sets and as keys
    for param in schemes.params_of(name):
        assert param.label and param.group in schemes.GROUPS
        if isinstance(param.default, (int, float)) and not isinstance(param.default, bool):
            assert param.min is not None and param.max is not None and param.min <= param.default <= param.max
        param.check(param.default)


def test_numbers_are_checked_whatever_form_they_come_in():
    epochs = schemes.Param("epochs", 2, "epochs", min=1, max=1000)
    assert epochs.check(3.0) == 3 and isinstance(epochs.check(3.0), int)
    for bad, message in [(2.5, "needs an int, got 2.5"), (float("nan"), "needs an int"), (True, "needs an int"),
                         (0, "must be from 1 to 1000; got 0")]:
        with pytest.raises(InputError, match=message):
            epochs.check(bad)
    rate = schemes.Param("rate", 0.1, "rate", min=0.0)  # one bound only
    with pytest.raises(InputError, match=r"'rate' must be from 0; got -1.0"):
        rate.check(-1)
    with pytest.raises(InputError, match="needs a float, got inf"):
        rate.check(float("inf"))
    assert rate.parse("2") == 2.0


def test_register_refuses_a_taken_name_and_bad_search_candidates():
    entry = schemes.Scheme("extra", "post-training", "Extra", "A test entry.", "nothing", "m:f",
                           search=(schemes.Candidate("size", 1, {"threads": 0}),))
    with pytest.raises(ValueError, match="already registered"):
        schemes.register(schemes.get("int8"))
    with pytest.raises(InputError, match="'threads' must be from 1"):
        schemes.register(entry)
    with pytest.raises(ValueError, match="objective 'size' or 'latency'"):
        schemes.register(schemes.Scheme("extra", "post-training", "Extra", "A test entry.", "nothing", "m:f",
                                        search=(schemes.Candidate("speed", 1),)))
    with pytest.raises(ValueError, match="a role among primary, follow-up, alternative"):
        schemes.register(schemes.Scheme("extra", "post-training", "Extra", "A test entry.", "nothing", "m:f",
                                        advice={"int8_cpu": schemes.Advice("best", "Why.", "tflite_guide")}))
    assert not schemes.known("extra")


def test_a_sweep_starts_the_quickest_first_from_the_front_and_the_longest_from_the_back():
    """The first worker takes jobs from the front, the others from the back: fine-tunes (most techniques last)
    come after post-training schemes, and the calibrated LiteRT Quantizer schemes sit together, so that the one
    calibration they share is made and waited for on one worker, not while another worker idles."""
    from types import SimpleNamespace

    from optlib.engine.sweep import dispatch_order

    given = ["prune_cluster_qat", "lq_weight_int4", "float32", "lq_dynamic_int8", "qat", "lq_int8", "int8",
             "lq_int8_selective", "lq_weight_int8", "prune_qat", "float16"]
    order = [s.scheme for s in dispatch_order([SimpleNamespace(scheme=name) for name in given])]
    assert order == ["float32", "lq_weight_int8", "float16", "lq_int8", "int8", "lq_int8_selective",
                     "lq_dynamic_int8", "lq_weight_int4", "qat", "prune_qat", "prune_cluster_qat"]
    default = schemes.select("all")  # the default sweep's order is its own: the same jobs on the same workers
    assert [s.scheme for s in dispatch_order([SimpleNamespace(scheme=n) for n in default])] == list(default)
