"""The wizard's LiteRT Quantizer counterparts: every one is a registered lq_ scheme beside its converter scheme."""

from optlib.engine import schemes
from optlib.guide import counterparts, wizard


def test_each_post_training_recommendation_has_a_registered_counterpart_of_the_other_backend():
    recommended = {name for node in wizard.as_graph()["nodes"] if node["kind"] == "leaf" for name in node["schemes"]}
    assert {"int8", "dynamic", "int16x8"} <= recommended
    for name in recommended:
        entry = schemes.get(name)
        found = counterparts.counterpart(name)
        if entry.family == "post-training" and name != "float16":
            assert found is not None, name
        if found:
            lq = schemes.get(found.scheme)
            assert lq.backend == "litert-quantizer" and lq.variant_of == (entry.variant_of or name)
            assert found.prefer.endswith(".")


def test_int4_weight_only_appears_where_download_size_matters_most():
    assert counterparts.extra_for({"priority": "download_size", "hardware": "cpu"}).scheme == "lq_weight_int4"
    assert counterparts.extra_for({"priority": "size", "hardware": "gpu"}).scheme == "lq_weight_int4"
    assert counterparts.extra_for({"priority": "latency", "hardware": "cpu"}) is None
    assert counterparts.extra_for({"priority": "size", "hardware": "microcontroller"}) is None  # integer-only
