"""Plain facts about a model and a dataset, as the Model & data page shows them.

Both load the model with TensorFlow (and the data as a sweep would), so the
page asks for them through :func:`optlib.engine.isolated.call`: a model whose
configuration declares far more than its file holds is built in a child
process under the worker memory budget, never in the app's server.
"""


def model_facts(ref, trusted=False):
    """Name, kind, inputs, outputs, parameter and layer counts of a model.

    Raises:
        InputError: the model cannot be loaded.
    """
    from optlib.inputs import models

    source = models.resolve(ref)
    return _model_facts(source, models.load(source, trusted))


def _model_facts(source, model):
    from optlib.inputs import preparation, tasks

    input_shape, classes = preparation.model_io(model)
    inputs, outputs = tasks.signature(model)
    from optlib.inputs import models

    rebuilt = models.REBUILT.get(model)
    return {"keras3": (f"a Keras {rebuilt[1]['keras_version']} file, rebuilt layer by layer as a Keras 2 (tf_keras) "
                       "model for the toolkit's training-time schemes; every run records how far the rebuild's "
                       "outputs are from Keras 3's own" if rebuilt else getattr(model, "untrainable", "")),
            "name": model.name, "kind": source.kind, "form": getattr(model, "form", "keras"), "input_shape": tuple(int(d) for d in input_shape),
            "classes": classes, "parameters": int(model.count_params()), "layers": len(model.layers),
            "trained": source.trained, "note": source.note,
            "inputs": [{"name": p.name, "shape": p.shape, "dtype": p.dtype} for p in inputs],
            "outputs": [{"name": o.name, "shape": o.shape, "activation": o.activation} for o in outputs]}


def data_facts(model_ref, trusted, data_ref, examples=10, task=""):
    """Facts of a dataset checked against the model, with up to ``examples`` images (one per class).

    Raises:
        InputError: the data is unreadable or does not fit the model.
    """
    from optlib.inputs import models

    source = models.resolve(model_ref)
    return _data_facts(source, models.load(source, trusted), data_ref, examples, task)


def model_and_data_facts(model_ref, trusted, data_ref, examples=10, task=""):
    """Both, with one start of TensorFlow and one load of the model (the page's first view of a pair).

    Returns:
        {"model": facts, "data": facts}, or {"model": facts, "data_problem": why the data cannot be used}.

    Raises:
        InputError: the model cannot be loaded.
    """
    from optlib.errors import InputError
    from optlib.inputs import models

    source = models.resolve(model_ref)
    model = models.load(source, trusted)
    both = {"model": _model_facts(source, model)}
    try:
        both["data"] = _data_facts(source, model, data_ref, examples, task)
    except InputError as problem:
        both["data_problem"] = str(problem)
    return both


def _data_facts(source, model, data_ref, examples, task):
    import numpy as np

    from optlib.inputs import opening

    dataset = opening.load_data(source, model, data_ref, task)  # prepared as a sweep prepares it
    facts = dataset.summary()
    raw_x = dataset.x["test"][dataset.inputs[0].name]
    raw_y = dataset.y_test
    facts["sample_shape"] = tuple(int(d) for d in raw_x.shape[1:])
    if raw_y is None or dataset.tasks[dataset.primary] != "classification" or raw_y.ndim != 1:
        facts.update(examples=[], example_labels=[], classes_present=0)
        return facts  # no class labels to pick examples by
    picks = []
    for label in sorted(set(int(v) for v in raw_y))[:examples]:
        picks.append(int(np.flatnonzero(raw_y == label)[0]))
    images = []
    for index in picks:
        image = np.asarray(raw_x[index], dtype=np.float32)
        image = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image
        if image.ndim not in (2, 3):
            break  # vectors, not images: nothing to draw
        low, high = float(image.min()), float(image.max())
        images.append(((image - low) / (high - low) if high > low else image * 0).clip(0, 1))
    names = dataset.class_names
    facts["examples"] = images
    facts["example_labels"] = [names[int(raw_y[i])] if int(raw_y[i]) < len(names) else str(int(raw_y[i]))
                               for i in picks[:len(images)]]
    labels = raw_y if dataset.raw.y_train is None else np.concatenate([raw_y, dataset.raw.y_train])
    facts["classes_present"] = int(np.unique(labels).size)
    return facts
