"""The Model & data page's helpers: uploads into a private folder, and the cached model and data facts.

Only the Model & data page uses these; what every page shares is in ``_shared.py``.
"""

import atexit
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import streamlit as st

from optlib.errors import InputError
from optlib.inputs import archive, data, models

MODEL_UPLOAD_TYPES = ("keras", "h5", "zip")
DATA_UPLOAD_TYPES = {"npz": ("npz",), "zip": ("zip",)}


# --- Uploads -------------------------------------------------------------------

def upload_limit_mb():
    """The upload size limit in force (server.maxUploadSize), in MB."""
    return int(st.get_option("server.maxUploadSize"))


def _upload_dir():
    """This session's private folder for uploads (mode 0700), made on first use."""
    folder = st.session_state["app_upload_dir"]
    if not folder or not Path(folder).is_dir():
        folder = tempfile.mkdtemp(prefix="optlib-upload-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)  # uploads live as long as the server
        st.session_state["app_upload_dir"] = folder
    return Path(folder)


def safe_name(name, allowed_suffixes, fallback):
    """Return a file name made only of safe characters, keeping an allowed suffix.

    The uploaded name is never used as a path: only its stem's letters,
    digits, ``-`` and ``_`` survive, and the suffix must be one of
    ``allowed_suffixes`` (without the dot).

    Raises:
        InputError: the suffix is not allowed.
    """
    base = re.split(r"[\\/]", str(name))[-1]
    stem, dot, suffix = base.rpartition(".")
    suffix = suffix.lower() if dot else ""
    if suffix not in allowed_suffixes:
        raise InputError(f"'{base}' is not a {' / '.join('.' + s for s in allowed_suffixes)} file; "
                         "choose a file of that type.")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:60] or fallback
    return f"{stem}.{suffix}"


def save_upload(uploaded, allowed_suffixes, fallback):
    """Write an uploaded file to this session's private folder; return its path.

    The file goes to ``<private folder>/<content hash>/<safe name>``, so the
    same upload always lands on the same path (and the store can serve its
    results), and two different files never overwrite each other. Zip
    archives are checked member by member (path traversal, links, sizes)
    before anything else looks at them.

    Raises:
        InputError: wrong type, or a zip archive that is refused.
    """
    name = safe_name(uploaded.name, allowed_suffixes, fallback)
    content = uploaded.getvalue()
    digest = hashlib.sha256(content).hexdigest()[:16]
    target = _upload_dir() / digest / name
    if not target.is_file():
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        with os.fdopen(handle, "wb") as sink:
            sink.write(content)
        os.replace(tmp, target)
    if target.suffix == ".zip":
        try:
            archive.check(target)
        except InputError:
            target.unlink(missing_ok=True)
            raise
    return target


# --- Cached loaders --------------------------------------------------------------

@st.cache_resource(show_spinner=False, max_entries=4)
def load_model(ref, fingerprint, trusted_flag):
    """Load a model once per process; the model is shared and never mutated.

    ``fingerprint`` is part of the cache key so that a changed file loads anew.
    """
    return models.load(models.resolve(ref), trusted_flag)


@st.cache_data(show_spinner=False, max_entries=16)
def model_summary(ref, fingerprint, trusted_flag):
    """Plain facts about a model for display.

    Raises:
        InputError: the model cannot be loaded or is not a classifier.
    """
    from optlib.inputs import tasks

    source = models.resolve(ref)
    model = load_model(ref, fingerprint, trusted_flag)
    input_shape, classes = data.model_io(model)
    inputs, outputs = tasks.signature(model)
    return {"name": model.name, "kind": source.kind, "input_shape": tuple(int(d) for d in input_shape),
            "classes": classes, "parameters": int(model.count_params()), "layers": len(model.layers),
            "trained": source.trained, "note": source.note,
            "inputs": [{"name": p.name, "shape": p.shape, "dtype": p.dtype} for p in inputs],
            "outputs": [{"name": o.name, "shape": o.shape, "activation": o.activation} for o in outputs]}


@st.cache_data(show_spinner=False, max_entries=16)
def data_summary(model_ref_, model_fp, trusted_flag, data_ref_, data_fp, examples=10, task=""):
    """Plain facts and a few example images of a dataset, checked against the model.

    Raises:
        InputError: the data is unreadable or does not fit the model.
    """
    import numpy as np

    model = load_model(model_ref_, model_fp, trusted_flag)
    dataset = data.load(data.resolve(data_ref_), model, task=task)
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
    facts["sample_shape"] = tuple(int(d) for d in raw_x.shape[1:])
    labels = raw_y if dataset.raw.y_train is None else np.concatenate([raw_y, dataset.raw.y_train])
    facts["classes_present"] = int(np.unique(labels).size)
    return facts
