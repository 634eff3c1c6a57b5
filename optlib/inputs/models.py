"""Models: the zoo, safe loading of user files, and fingerprints.

Resolving a model reference (:func:`resolve`) is cheap and never imports
TensorFlow, so a sweep whose results are all in the store stays fast.
Loading (:func:`load`) builds or reads the Keras model.

User files are untrusted: their configuration is checked against an
allowlist before Keras reads them (:mod:`optlib.inputs.allowlist`), they are
loaded in Keras safe mode, and only ever in a sandboxed child process
(:mod:`optlib.engine.sandbox`). ``trusted=True`` (the operator's choice) lets
``Lambda`` layers and custom objects through.
"""

import fcntl
import hashlib
import os
import shutil
import tempfile
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path

from optlib import paths
from optlib.errors import InputError, first_line
from optlib.inputs import archive, graph_models, keras3, limits

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".zip", ".tflite")


@dataclass(frozen=True)
class ZooEntry:
    """A model the project can build without any file from the user."""

    name: str
    title: str
    input_shape: tuple
    scale: str  # input range the model expects: "0..1" or "-1..1"
    weights_file: str = ""  # file name in the Keras cache holding ImageNet weights
    params: int = 0  # parameters of the architecture (Keras Applications' table); 0 for the small demos


ZOO = {
    "digits_cnn": ZooEntry("digits_cnn", "Compact CNN trained on the built-in digits", (28, 28, 1), "0..1"),
    "mobilenet_v1": ZooEntry("mobilenet_v1", "MobileNet v1 1.0 224", (224, 224, 3), "-1..1",
                             "mobilenet_1_0_224_tf.h5", 4_253_864),
    "mobilenet_v2": ZooEntry("mobilenet_v2", "MobileNet v2 1.0 224", (224, 224, 3), "-1..1",
                             "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5", 3_538_984),
    "inception_v3": ZooEntry("inception_v3", "Inception v3", (299, 299, 3), "-1..1",
                             "inception_v3_weights_tf_dim_ordering_tf_kernels.h5", 23_851_784),
    "resnet_v2_101": ZooEntry("resnet_v2_101", "ResNet v2 101", (224, 224, 3), "-1..1",
                              "resnet101v2_weights_tf_dim_ordering_tf_kernels.h5", 44_675_560),
}
DIGITS_CNN_RECIPE = "digits_cnn-v1"  # bump when the architecture or training recipe changes

# Demos on real data shipped offline (scikit-learn), trained once on first use and cached like digits_cnn.
ZOO["digits_lstm"] = ZooEntry("digits_lstm", "Sequence demo: an LSTM reading each digit row by row "
                              "(8 steps × 8 features)", (8, 8), "0..1")
ZOO["diabetes_mlp"] = ZooEntry("diabetes_mlp", "Regression demo: an MLP predicting diabetes progression (MAE)",
                               (10,), "0..1")
TRAINED = {"digits_cnn": DIGITS_CNN_RECIPE, "digits_lstm": "digits_lstm-v1", "diabetes_mlp": "diabetes_mlp-v1"}
DEMO_DATA = {"digits_cnn": "digits", "digits_lstm": "digits", "diabetes_mlp": "diabetes"}  # each demo's own data


@dataclass(frozen=True)
class ModelSource:
    """A resolved model reference.

    Attributes:
        ref: what the person gave (zoo name or path).
        kind: "zoo", "keras", "h5", "savedmodel", "tflite" or "zip".
        form: what the model is, which decides the schemes it takes (:data:`optlib.inputs.graph_models.FORMS`):
            "keras", "savedmodel" (plain, no Keras metadata), "tflite" (float) or "tflite-quantized".
        path: the file or folder, or None for zoo models.
        fingerprint: content hash; equal fingerprints mean the same model.
        trained: False for zoo architectures without weights (size and latency only).
        note: a short remark to show beside the model (e.g. "untrained").
        weights: path of ImageNet weights for a zoo architecture, if found.
    """

    ref: str
    kind: str
    path: Path = None
    fingerprint: str = ""
    trained: bool = True
    note: str = ""
    weights: Path = None
    form: str = "keras"
    signature: str = ""  # a plain SavedModel's signature to use ("": serving_default, or its only one)

    @property
    def name(self):
        return self.ref if self.kind == "zoo" else Path(self.ref).name


def _hash_path(path):
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if path.is_dir():  # a folder's layout is part of its content; a file's name is not
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def keras_cache_dir():
    """Return the folder where Keras keeps application weights (``models/`` in :func:`optlib.paths.keras_home`)."""
    return paths.keras_home() / "models"


def resolve(ref, weights=None, signature=""):
    """Resolve a model reference without loading TensorFlow.

    Args:
        ref: a zoo name or a path to ``.keras``, ``.h5``, ``.tflite``, a SavedModel folder or a ``.zip``.
        weights: optional path to ImageNet weights for a zoo architecture.
        signature: for a plain SavedModel, the signature to use (default ``serving_default``, or its only one).

    Raises:
        InputError: unknown zoo name, missing file, or unsupported file type.
    """
    ref = str(ref).strip()
    if ref in ZOO:
        entry = ZOO[ref]
        if ref in TRAINED:
            return ModelSource(ref, "zoo", fingerprint=TRAINED[ref])
        weights_path = Path(weights) if weights else keras_cache_dir() / entry.weights_file
        if weights and not weights_path.is_file():
            raise InputError(f"Weights file {weights} not found; give the path of an .h5 weights file.")
        if weights_path.is_file():
            return ModelSource(ref, "zoo", fingerprint=f"{ref}-imagenet-{_hash_path(weights_path)}",
                               weights=weights_path, note="ImageNet weights")
        return ModelSource(ref, "zoo", fingerprint=f"{ref}-untrained-seed0", trained=False,
                           note="untrained (no ImageNet weights found): size and latency only")
    path = Path(ref).expanduser()
    if not path.exists():
        if os.sep not in ref and not Path(ref).suffix:
            raise InputError(f"Unknown model '{ref}'. Zoo models: {', '.join(ZOO)}; "
                             "or give a path to a .keras, .h5, SavedModel folder or .zip file.")
        raise InputError(f"Model file '{ref}' does not exist.")
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise InputError(f"Folder '{ref}' is not a SavedModel (no saved_model.pb inside).")
        kind = "savedmodel"
    elif path.suffix.lower() in MODEL_SUFFIXES:
        kind = {".keras": "keras", ".h5": "h5", ".hdf5": "h5", ".zip": "zip", ".tflite": "tflite"}[path.suffix.lower()]
        if kind == "keras" and _is_hdf5(path):  # tf_keras can write HDF5 under a .keras name
            kind = "h5"
        if kind == "tflite" and not graph_models.is_tflite(path):
            raise InputError(f"'{path.name}' is not a TFLite model (no TFL3 identifier); give a .tflite made by a "
                             "LiteRT converter.")
    else:
        raise InputError(f"'{path.name}' is not a model file: use .keras, .h5, .tflite, a SavedModel folder or a "
                         ".zip of one.")
    form = _form_of(path, kind)
    signature = str(signature or "").strip()
    if signature and form != "savedmodel":
        raise InputError(f"A signature applies to a SavedModel without Keras metadata; '{path.name}' is "
                         f"{graph_models.FORMS[form]}.")
    return ModelSource(str(path), kind, path=path, fingerprint=_hash_path(path) + (f":{signature}" if signature
                                                                                   else ""),
                       form=form, signature=signature)


def _form_of(path, kind):
    """What a model file is, from its name and layout (no model is read): see :attr:`ModelSource.form`."""
    if kind == "tflite":
        return graph_models.tflite_form(path)
    if kind == "savedmodel":
        return "keras" if (path / "keras_metadata.pb").is_file() else "savedmodel"
    if kind == "zip":
        try:
            with zipfile.ZipFile(path) as bundle:
                names = [Path(n) for n in bundle.namelist()]
        except (zipfile.BadZipFile, OSError):
            return "keras"  # unpacking says what is wrong with it
        if any(n.suffix.lower() == ".tflite" for n in names):
            return "tflite"
        saved = {n.parent for n in names if n.name == "saved_model.pb"}
        if saved and not any(n.name == "keras_metadata.pb" and n.parent in saved for n in names):
            return "savedmodel"
    return "keras"


def check(source, trusted=False):
    """Refuse a model file whose configuration is off the allowlist (:mod:`optlib.inputs.allowlist`),
    without loading TensorFlow or the model. Zoo models are the project's own.

    A sweep calls it before it opens the store, so such a file leaves nothing behind.

    Raises:
        InputError: naming the object, where it sits and what it can reach; or the file cannot be read.
    """
    from optlib.inputs import allowlist

    if source.kind == "zip":
        with tempfile.TemporaryDirectory(prefix="optlib-check-") as folder:
            inner = archive.extract_model_zip(source.path, Path(folder))
            allowlist.check(inner, _kind_of(inner), trusted)
    elif source.kind != "zoo":
        allowlist.check(source.path, source.kind, trusted)


def trusted_loading_allowed():
    """True when the operator of this server allows trusted loading (``OPTLIB_TRUSTED_LOADING=1``).

    Trusted loading runs Python code stored in a model file (Lambda layers,
    custom objects). The app offers it per file only when the operator has
    turned it on; the CLI's ``--trust`` is the operator's own choice.
    """
    return os.environ.get("OPTLIB_TRUSTED_LOADING", "").strip().lower() in ("1", "true", "yes", "on")


def load(source, trusted=False):
    """Load the Keras model of a resolved source.

    Args:
        source: a :class:`ModelSource`.
        trusted: allow Lambda layers and custom objects (runs code from the file).

    Raises:
        InputError: the file is not a usable model, or is refused in safe mode.
    """
    if source.kind == "zoo":
        return _build_zoo(source)
    if source.kind == "zip":
        folder = tempfile.mkdtemp(prefix="optlib-model-")
        try:
            inner = archive.extract_model_zip(source.path, Path(folder))
            model = load(ModelSource(str(inner), _kind_of(inner), path=inner, signature=source.signature), trusted)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        if getattr(model, "folder", None) or model in REBUILT:  # read again later (conversion, the rebuild check)
            weakref.finalize(model, shutil.rmtree, folder, True)
        else:
            shutil.rmtree(folder, ignore_errors=True)
        return model
    limits.check_model(source.path, source.kind, source.name)  # declared weights, before any is read
    check(source, trusted)
    if source.kind == "tflite":
        return graph_models.load_tflite(source.path)
    if source.kind == "savedmodel" and not (source.path / "keras_metadata.pb").is_file():
        return graph_models.load_saved_model(source.path, source.signature)
    if source.kind == "keras" and keras3.is_keras3(source.path):
        return _keras3_load(source.path)
    return _keras_load(source.path, trusted)


REBUILT = weakref.WeakKeyDictionary()  # a tf_keras model rebuilt from a Keras 3 file -> (that file, the rebuild's facts)


def _keras3_load(path):
    """A Keras 3 file: rebuilt as a tf_keras model where every layer has a Keras 2 twin (all schemes then),
    else exported by Keras 3 itself as a SavedModel that takes the post-training schemes, its rows for
    training-time schemes saying which layer has no Keras 2 equivalent. Never a different model silently:
    :func:`rebuild_difference` measures the rebuild against Keras 3's own outputs."""
    try:
        model, facts = keras3.rebuild(path)
    except (keras3.NoKeras2Twin, keras3.NotTranslated) as why:
        return _keras3_as_saved_model(path, str(why))
    REBUILT[model] = (Path(path), facts)
    return model


def _keras3_as_saved_model(path, why):
    from optlib._keras import keras as tf_keras

    tf_keras()  # TensorFlow with tf_keras first; Keras 3 imports beside it
    import keras

    try:
        original = keras.saving.load_model(str(path), safe_mode=True, compile=False)
        folder = tempfile.mkdtemp(prefix="optlib-keras3-")
        from optlib._quiet import native_stderr

        with native_stderr():
            original.export(folder, verbose=False)
    except Exception as error:  # Keras raises many types for a file it cannot read or export
        raise InputError(f"'{Path(path).name}' could not be read as a Keras 3 model ({first_line(error, 160)}).") \
            from None
    model = graph_models.load_saved_model(folder)
    model.untrainable = (f"{why.rstrip('.')}: the training-time schemes need a Keras 2 model, so this Keras 3 "
                         "model runs the post-training schemes only")
    model.name = Path(path).name
    weakref.finalize(model, shutil.rmtree, folder, True)
    return model


def rebuild_difference(model, xs):
    """For a model rebuilt from a Keras 3 file: {"max_abs_difference": the largest output difference from
    Keras 3's own on ``xs``, "layers", "keras_version"}; None for any other model."""
    found = REBUILT.get(model)
    if found is None:
        return None
    path, facts = found
    return {"max_abs_difference": keras3.max_difference(path, model, xs), "layers": len(facts["layers"]),
            "keras_version": facts["keras_version"], "dropped": facts["dropped"]}


def _kind_of(path):
    if path.is_dir():
        return "savedmodel"
    if path.suffix.lower() == ".tflite":
        return "tflite"
    return "h5" if _is_hdf5(path) else {".keras": "keras", ".h5": "h5", ".hdf5": "h5"}[path.suffix.lower()]


def _is_hdf5(path):
    with open(path, "rb") as handle:
        return handle.read(8) == b"\x89HDF\r\n\x1a\n"


def _keras_load(path, trusted):
    from optlib._keras import keras

    try:
        kwargs = {"safe_mode": not trusted} if zipfile.is_zipfile(path) else {}
        model = keras().models.load_model(str(path), compile=False, **kwargs)
    except Exception as error:  # Keras raises many types for a bad file
        raise InputError(_explain_load_error(path, error)) from None
    if not isinstance(model, keras().Model):
        raise InputError(f"'{path.name}' holds no Keras model.")
    if not trusted:
        revived = [m for m in (model, *model.submodules) if "saved_model" in type(m).__module__]
        if revived:  # rebuilt from the SavedModel's own graph functions, not from a configuration we checked
            raise InputError(f"'{path.name}' is refused: layer '{getattr(revived[0], 'name', '?')}' could not be "
                             "rebuilt from its Keras configuration, so it would run the graph code stored in the "
                             "file. Load it only if you made the file and trust it (trusted loading).")
    return model


def _explain_load_error(path, error):
    whole = str(error)
    if isinstance(error, PermissionError) or "Permission denied" in whole or "PERMISSION_DENIED" in whole:
        return (f"'{path.name}' tried to reach a file or the network while it was being read, and the sandbox "
                "stopped it: the file runs code. Nothing was written. Use a model you trust.")
    text = whole.strip().splitlines()[0] if whole.strip() else type(error).__name__
    if "Lambda" in text or "safe_mode" in text:
        return (f"'{path.name}' has a Lambda layer, which runs Python code stored in the file; "
                "it is refused in safe mode. Trust the file only if you made it.")
    if "Unknown" in text or "custom" in text.lower():
        return f"'{path.name}' uses a custom object Keras does not know ({text[:160]}); it cannot be loaded safely."
    return f"'{path.name}' could not be read as a Keras model ({text[:160]}). Is the file complete?"


# --- The zoo ----------------------------------------------------------------

def _build_zoo(source):
    from optlib._keras import keras, set_seed

    entry = ZOO[source.ref]
    if entry.name == "digits_cnn":
        return _digits_cnn()
    if entry.name in TRAINED:
        return _cached_demo(entry.name)
    apps = keras().applications
    set_seed(0)
    builders = {
        "mobilenet_v1": lambda w: apps.MobileNet(weights=w, input_shape=entry.input_shape),
        "mobilenet_v2": lambda w: apps.MobileNetV2(weights=w, input_shape=entry.input_shape),
        "inception_v3": lambda w: apps.InceptionV3(weights=w, input_shape=entry.input_shape),
        "resnet_v2_101": lambda w: apps.ResNet101V2(weights=w, input_shape=entry.input_shape),
    }
    model = builders[entry.name](None)
    if source.weights:
        try:
            model.load_weights(str(source.weights))
        except Exception as error:
            raise InputError(f"Weights file '{source.weights.name}' does not fit {entry.name}: "
                             f"{first_line(error, 160)}") from None
    return model


def _digits_cnn():
    """Return the digits CNN, training it once (seconds) and caching it."""
    cached = paths.zoo_dir() / f"{DIGITS_CNN_RECIPE}.keras"
    if cached.is_file():
        return _load_cached(cached)
    with open(paths.zoo_dir() / f".{DIGITS_CNN_RECIPE}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two workers (or sessions) train it once, not twice
        if cached.is_file():
            return _load_cached(cached)
        return _train_digits_cnn(cached)


def _load_cached(path):
    """A trained demo from the zoo cache, checked like any file (the cache is a file on disk like any other)."""
    from optlib.inputs import allowlist

    allowlist.check(path, _kind_of(path))
    return _keras_load(path, trusted=False)


def _cached_demo(name):
    """Return a demo model, training it once (seconds) and caching it, as :func:`_digits_cnn` does."""
    cached = paths.zoo_dir() / f"{TRAINED[name]}.keras"
    if cached.is_file():
        return _load_cached(cached)
    with open(paths.zoo_dir() / f".{TRAINED[name]}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cached.is_file():
            return _load_cached(cached)
        model = {"digits_lstm": _train_digits_lstm, "diabetes_mlp": _train_diabetes_mlp}[name]()
        handle, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".keras")
        os.close(handle)
        model.save(tmp, save_format="keras_v3")
        os.replace(tmp, cached)
        return model


def _train_digits_lstm():
    """An LSTM over the rows of scikit-learn's digits: 8 steps of 8 pixels (int16 activations matter here).

    Unrolled (8 steps): the converter then writes plain FULLY_CONNECTED, LOGISTIC and TANH ops that every
    post-training scheme quantizes, int16 activations included (its fused LSTM op has no 16x8 kernel).
    """
    from optlib._keras import keras, set_seed
    from optlib.inputs import data_refs, preparation

    k = keras()
    set_seed(0)
    model = k.Sequential([k.layers.Input((8, 8), name="rows"), k.layers.LSTM(32, unroll=True, name="lstm"),
                          k.layers.Dense(10, activation="softmax", name="dense")], name="digits_lstm")
    dataset = preparation.load(data_refs.resolve("digits"), model)
    model.compile(k.optimizers.Adam(5e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(*dataset.training(), epochs=25, batch_size=32, verbose=0)
    return model


def _train_diabetes_mlp():
    """An MLP on scikit-learn's diabetes data (10 features, disease progression a year later)."""
    from optlib._keras import keras, set_seed
    from optlib.inputs import data_refs, preparation

    k = keras()
    set_seed(0)
    model = k.Sequential([k.layers.Input((10,), name="features"),
                          k.layers.Dense(32, activation="relu", name="dense"),
                          k.layers.Dense(16, activation="relu", name="dense_1"), k.layers.Dense(1, name="progression")],
                         name="diabetes_mlp")
    dataset = preparation.load(data_refs.resolve("diabetes"), model)
    model.compile(k.optimizers.Adam(1e-2), "mse", ["mae"])
    model.fit(*dataset.training(), epochs=300, batch_size=32, verbose=0)
    return model


def digits_cnn_architecture(k):
    """The built-in digits CNN, untrained. Its layers are named as a fresh process names them: Keras numbers
    unnamed layers after those made earlier in the process, and the tensor names Layer insight shows
    ("dense/MatMul") come from them."""
    return k.Sequential([
        k.layers.Input((28, 28, 1), name="image"),
        k.layers.Conv2D(16, 3, activation="relu", name="conv2d"),
        k.layers.MaxPooling2D(name="max_pooling2d"),
        k.layers.Conv2D(32, 3, activation="relu", name="conv2d_1"),
        k.layers.MaxPooling2D(name="max_pooling2d_1"),
        k.layers.Flatten(name="flatten"),
        k.layers.Dense(64, activation="relu", name="dense"),
        k.layers.Dense(10, activation="softmax", name="dense_1"),
    ], name="digits_cnn")


def _train_digits_cnn(cached):
    from optlib.inputs import data_refs, preparation
    from optlib._keras import keras, set_seed

    k = keras()
    set_seed(0)
    model = digits_cnn_architecture(k)
    dataset = preparation.load(data_refs.resolve("digits"), model)
    model.compile(k.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(*dataset.training(), epochs=15, batch_size=32, verbose=0)
    handle, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".keras")
    os.close(handle)
    model.save(tmp, save_format="keras_v3")  # a thread-local tf_keras flag can otherwise write HDF5
    os.replace(tmp, cached)
    return model
