"""One opener for a model and its data: every part prepares a model's inputs the same way."""

from optlib.engine import job
from optlib.inputs import data_refs, facts, models


def test_model_and_data_and_the_sweep_prepare_mobilenets_inputs_the_same_way():
    """MobileNetV2 takes [-1, 1]: the page's facts used to say [0, 1] while the sweep fed [-1, 1]."""
    shown = facts.data_facts("mobilenet_v2", False, "digits", examples=0)["recipe"]
    fed = job.Context(job.Inputs(models.resolve("mobilenet_v2"), data_refs.resolve("digits"))).data.recipe
    assert shown == fed
    assert shown["scale"].endswith("[-1, 1]")
