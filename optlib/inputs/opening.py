"""Opening a model and its data together: the one place that knows how a model's inputs are prepared.

Every part that needs a loaded model and its prepared data (a sweep's jobs, the layer comparison,
LiteRT Quantizer's validation, the Model & data page's facts) opens them here, so they all feed the
model the same inputs: a zoo model's own input range (MobileNet's [-1, 1]), every other model's [0, 1].

    source, model, dataset = open_inputs("mobilenet_v2", "digits")
"""


def scale_of(source):
    """The input range a model expects ("0..1" or "-1..1"), from its resolved source."""
    from optlib.inputs import models

    return models.ZOO[source.ref].scale if source.kind == "zoo" else "0..1"


def load_data(source, model, data, task=""):
    """The dataset ``data`` (a reference or a resolved DataSource) prepared for ``model`` (loaded from ``source``).

    Raises:
        InputError: the data is unreadable or does not fit the model.
    """
    from optlib.inputs import data_refs, preparation

    found = data_refs.resolve(data) if isinstance(data, str) else data
    return preparation.load(found, model, scale_of(source), task)


def open_inputs(model, data, trusted=False, task=""):
    """Resolve and load a model and its data: (ModelSource, the loaded model, the prepared Dataset).

    Args:
        model, data: references (or resolved sources).
        trusted: trusted loading (the operator's choice; runs code stored in the file).
        task: "" (detected) or a task setting (:func:`optlib.inputs.tasks.parse`).

    Raises:
        InputError: the model or the data cannot be used.
    """
    from optlib.inputs import models

    source = models.resolve(model) if isinstance(model, str) else model
    loaded = models.load(source, trusted)
    return source, loaded, load_data(source, loaded, data, task)
