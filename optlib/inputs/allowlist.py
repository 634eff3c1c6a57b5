"""Which model files may be loaded: an allowlist read from the parsed configuration, never from the bytes.

A Keras model file can run code while Keras reads it: a ``Lambda`` layer
stores Python bytecode; a ``TFOpLambda`` or ``SlicingOpLambda`` names any
function of the ``tf`` API (``io.write_file`` included) and its inbound
nodes can call it with constants while the model is being rebuilt; a config
entry can name any module and class. Keras's own safe mode has been bypassed
again and again, so this module decides before any Keras code runs, from the
configuration itself:

- every object in the tree (layers, nested models, initializers,
  regularizers, constraints, activations, losses, optimizers, dtype policies,
  tensor specs) is a built-in Keras class or one of the Model Optimization
  Toolkit's wrappers (:mod:`optlib.inputs.keras_names`), from a Keras module;
- a layer that names a function (``TFOpLambda``, ``SlicingOpLambda``,
  ``ClassMethod``, ``InstanceMethod``, ``InstanceProperty``) names one on the
  math, array and neural-net allowlist (:mod:`optlib.inputs.tfops`);
- no constant argument of those layers is a string (a path, a command);
- no ``Lambda`` unless the caller trusts the file;
- an object holds no key that this module does not know.

:func:`check` reads ``.keras`` (its ``config.json``), ``.h5`` (its
``model_config``), a SavedModel's ``keras_metadata.pb`` and each inside a
``.zip``, and never imports TensorFlow. It is one of two walls: every model
file is also loaded only in a sandboxed child (:mod:`optlib.engine.sandbox`).
"""

import json
import os
import zipfile
from pathlib import Path

from optlib.errors import InputError
from optlib.inputs import archive, tfops
from optlib.inputs.keras_names import known

# Built-in classes that read files or run code: never allowed (Lambda only with trusted loading).
REACHES_OUT = {
    "Lambda": "runs Python code stored in the file",
    "TFSMLayer": "loads another SavedModel from a path",
    "TorchModuleWrapper": "runs a pickled PyTorch module",
    "JaxLayer": "runs a stored JAX function",
    "FlaxLayer": "runs a stored Flax module",
    "StringLookup": "can read its vocabulary from a file",
    "IntegerLookup": "can read its vocabulary from a file",
    "TextVectorization": "can read its vocabulary from a file",
    "DenseFeatures": "can read vocabulary files of feature columns",
    "DynamicLookup": "can read its vocabulary from a file",
}
# Helpers and base classes that the Keras modules export but a saved model never names.
NOT_OBJECTS = {"deserialize", "get", "serialize", "Layer", "Wrapper", "PreprocessingLayer", "AbstractRNNCell",
               "Initializer", "Regularizer", "Constraint", "Optimizer", "LearningRateSchedule", "InputSpec"}
OP_LAYERS = {"TFOpLambda", "SlicingOpLambda", "ClassMethod", "InstanceMethod", "InstanceProperty"}
# RaggedTensor and SparseTensor members tf_keras writes as ClassMethod / InstanceMethod / InstanceProperty.
CLASS_METHODS = {"RaggedTensor": {"from_value_rowids", "from_row_splits", "from_row_lengths", "from_row_starts",
                                  "from_row_limits", "from_uniform_row_length", "from_nested_value_rowids",
                                  "from_nested_row_splits", "from_nested_row_lengths", "from_tensor",
                                  "from_sparse"},
                 "SparseTensor": {"from_value"}}
INSTANCE_MEMBERS = {"values", "flat_values", "row_splits", "nested_row_splits", "indices", "dense_shape",
                    "value_rowids", "nested_value_rowids", "nrows", "row_starts", "row_limits", "row_lengths",
                    "nested_row_lengths", "bounding_shape", "with_values", "with_flat_values",
                    "with_row_splits_dtype", "merge_dims", "to_tensor", "to_sparse"}
# Where an object's "module" may point (None in .h5 and SavedModel metadata).
MODULES = {None, "keras", "keras.layers", "keras.initializers", "keras.regularizers", "keras.constraints",
           "keras.activations", "keras.losses", "keras.metrics", "keras.optimizers",
           "keras.optimizers.schedules", "keras.models", "keras.src.models.functional",
           "keras.src.models.sequential", "keras.src.models.model", "tf_keras.src.engine.functional",
           "tf_keras.src.engine.sequential", "tf_keras.src.engine.training", "tf_keras.src.layers.core.tf_op_layer",
           "tensorflow_model_optimization"}
# Keys an object may hold: Keras's own (.keras / .h5) and the SavedModel metadata's.
OBJECT_KEYS = {"class_name", "config", "module", "registered_name", "build_config", "compile_config",
               "shared_object_id", "name", "inbound_nodes", "items", "serialized", "type_spec",
               "autocast", "backend", "batch_input_shape", "build_input_shape", "dtype", "expects_training_arg",
               "full_save_spec", "input_spec", "is_graph_network", "keras_version", "model_config",
               "must_restore_from_config", "preserve_input_structure_in_config", "stateful", "trainable",
               "training_config", "save_spec", "ragged", "sparse", "optional", "layer_metrics", "metrics",
               "inputs", "outputs", "input_layers", "output_layers"}
# Structure markers that carry values, not code.
STRUCTURES = {"__tuple__", "TensorShape", "InputSpec", "__keras_tensor__", "__ellipsis__", "__slice__"}
TYPE_SPECS = {"tf.TensorSpec", "tf.RaggedTensorSpec", "tf.SparseTensorSpec"}
# Keys that name code somewhere in Keras; allowed only where a rule below reads them.
CODE_KEYS = {"function", "fn", "module", "registered_name", "cls_symbol", "method_name", "attr_name",
             "function_type", "output_shape_type", "output_shape_module", "module_objects", "custom_objects",
             "__lambda__", "__passive_serialization__"}
# String arguments an op layer may take (a resize method, a dtype, a padding mode), never a path.
STRING_KWARGS = {"name", "method", "padding", "data_format", "mode", "interpolation", "dtype", "out_type",
                 "output_type", "reduction", "antialias"}
SKIP = "OPTLIB_TEST_SKIP_ALLOWLIST"  # "1": no check at all, so a test can show what the sandbox alone stops
LAYER_KEYS = {"layer", "cell", "cells", "backward_layer", "forward_layer"}  # a bare name makes that layer
GROUP_NAMES = {"activation": "activations", "recurrent_activation": "activations"}


class Refused(InputError):
    """A model file refused by the allowlist (the message names the object and where it sits)."""


def check(path, kind, trusted=False):
    """Refuse a model file whose configuration names anything off the allowlist, without loading it.

    Args:
        path: the file or SavedModel folder.
        kind: "keras", "h5" or "savedmodel" (a ``.zip`` is extracted by :func:`optlib.inputs.models.check` first).
        trusted: allow ``Lambda`` layers and unknown objects (the operator's choice; runs the file's code).

    Raises:
        Refused: naming the object, where it sits and what it can reach.
        InputError: the file cannot be read (truncated, not a model).
    """
    path = Path(path)
    if kind == "tflite":  # no configuration and no code: the runtime reads it, in the sandbox
        return
    configs = list(read_configs(path, kind))  # sizes and syntax: checked even when the walk below is not
    if trusted or os.environ.get(SKIP) == "1":  # SKIP: only the tests that prove the sandbox holds alone
        return
    if kind == "savedmodel" and not configs:  # a plain SavedModel: its graph's ops
        check_graph(path)
    for where, config in configs:
        _Walk(path.name).object_or_value(config, where)


# TensorFlow ops a plain SavedModel's graph may not hold: they run Python, or reach files by a path in the
# graph. (The saver's SaveV2 and MergeV2Checkpoints, in every SavedModel, only run when one saves it; the
# sandbox holds them anyway.)
GRAPH_OPS_REFUSED = {
    "PyFunc": "runs Python code stored in the file", "PyFuncStateless": "runs Python code stored in the file",
    "EagerPyFunc": "runs Python code stored in the file",
    "WriteFile": "can reach files", "ReadFile": "can reach files", "MatchingFiles": "can list files",
    "ImmutableConst": "can reach files", "Save": "can reach files", "SaveSlices": "can reach files",
    "LoadAndRemapMatrix": "can reach files", "FixedLengthRecordReaderV2": "can reach files",
    "TFRecordReaderV2": "can reach files", "TextLineReaderV2": "can reach files", "WholeFileReaderV2": "can reach files",
    "CreateSummaryFileWriter": "can reach files", "CreateSummaryDbWriter": "can reach files",
    "WriteSummary": "can reach files", "WriteScalarSummary": "can reach files", "WriteRawProtoSummary": "can reach files",
    "ExperimentalDatasetToTFRecord": "can reach files", "DatasetToTFRecord": "can reach files",
    "SaveDataset": "can reach files", "SaveDatasetV2": "can reach files", "LoadDataset": "can reach files",
    "TFRecordDataset": "can reach files", "TFRecordDatasetV2": "can reach files",
    "FixedLengthRecordDataset": "can reach files", "TextLineDataset": "can reach files",
    "ShellExecute": "runs programs",
}


def check_graph(folder):
    """Refuse a plain SavedModel (no Keras metadata) whose graph or functions hold an op that runs Python or
    reaches files (:data:`GRAPH_OPS_REFUSED`), read from ``saved_model.pb`` without TensorFlow.

    Raises:
        Refused: naming the op, the node and the function it sits in.
        InputError: ``saved_model.pb`` cannot be read.
    """
    folder = Path(folder)
    try:
        data = (folder / "saved_model.pb").read_bytes()
        found = list(_graph_ops(data))
    except (OSError, ValueError, IndexError):
        raise InputError(f"'{folder.name}' has a saved_model.pb that cannot be read; it is not a usable "
                         "SavedModel.") from None
    for where, node, op in found:
        if op in GRAPH_OPS_REFUSED:
            raise Refused(f"'{folder.name}' is refused: node '{node}' ({op}) in {where} "
                          f"{GRAPH_OPS_REFUSED[op]}.")


def _graph_ops(data):
    """Yield (where, node name, op) of every node of every graph and function in a SavedModel protobuf
    (SavedModel.meta_graphs = 2; MetaGraphDef.graph_def = 2; GraphDef.node = 1, .library = 2;
    FunctionDefLibrary.function = 1; FunctionDef.signature = 1 (OpDef.name = 1), .node_def = 3;
    NodeDef.name = 1, .op = 2)."""
    def node(entry):
        fields = dict((f, v) for f, v in _fields(entry) if f in (1, 2))
        return (fields.get(1) or b"").decode("utf-8", "replace"), (fields.get(2) or b"").decode("utf-8", "replace")

    for field, meta in _fields(data):
        if field != 2 or not isinstance(meta, bytes):
            continue
        for inner, graph in _fields(meta):
            if inner != 2 or not isinstance(graph, bytes):
                continue
            for part, value in _fields(graph):
                if part == 1 and isinstance(value, bytes):
                    yield ("the graph", *node(value))
                elif part == 2 and isinstance(value, bytes):
                    for kind, function in _fields(value):
                        if kind != 1 or not isinstance(function, bytes):
                            continue
                        name = "a function"
                        for piece, content in _fields(function):
                            if piece == 1 and isinstance(content, bytes):
                                name = f"function '{node(content)[0]}'"
                            elif piece == 3 and isinstance(content, bytes):
                                yield (name, *node(content))


def read_configs(path, kind):
    """Yield (where, parsed config) of a model file: one for .keras and .h5, one per node for a SavedModel.

    Raises:
        InputError: the configuration is missing or is not JSON.
    """
    name = Path(path).name
    if kind == "keras":
        if not zipfile.is_zipfile(path):
            raise InputError(f"'{name}' is not a valid .keras file (it may be truncated or not a model).")
        archive.check(path)  # every member's size, before anything is read or extracted
        try:
            with zipfile.ZipFile(path) as bundle:
                yield "", json.loads(bundle.read("config.json"))
        except (zipfile.BadZipFile, KeyError, ValueError, OSError):
            raise InputError(f"'{name}' is not a valid .keras file (it may be truncated or not a model).") from None
    elif kind == "h5":
        import h5py

        try:
            with h5py.File(path, "r") as handle:
                raw = handle.attrs.get("model_config")
        except OSError:
            raise InputError(f"'{name}' is not a readable HDF5 (.h5) file. Is it complete?") from None
        if raw is None:
            raise InputError(f"'{name}' holds only weights, not a model; save the whole model.")
        try:
            yield "", json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        except ValueError:
            raise InputError(f"'{name}' has a model_config that is not JSON; it is not a Keras model.") from None
    elif kind == "savedmodel":
        metadata = Path(path) / "keras_metadata.pb"
        if not metadata.is_file():  # a plain SavedModel: no Keras configuration, its graph's ops are checked
            return
        try:
            for index, text in enumerate(_metadata_entries(metadata.read_bytes())):
                yield f"keras_metadata.pb node {index}", json.loads(text)
        except (ValueError, IndexError):
            raise InputError(f"'{name}' has Keras metadata that cannot be read; it is not a usable SavedModel.") \
                from None
    else:
        raise ValueError(f"unknown model kind {kind!r}")


def _metadata_entries(data):
    """The JSON text of every node of a ``keras_metadata.pb`` (a SavedMetadata protobuf: nodes = 1, and in each
    SavedObject, metadata = 5), read from the protobuf wire format without TensorFlow."""
    for field, node in _fields(data):
        if field == 1 and isinstance(node, bytes):
            for inner, value in _fields(node):
                if inner == 5 and isinstance(value, bytes):
                    yield value.decode("utf-8")


def _fields(data):
    """Yield (field number, bytes or int) of one protobuf message."""
    i = 0

    def varint():
        nonlocal i
        value = shift = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while i < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            yield field, varint()
        elif wire == 2:
            size = varint()
            if i + size > len(data):
                raise ValueError("truncated protobuf")
            yield field, bytes(data[i:i + size])
            i += size
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
            yield field, None
        else:
            raise ValueError(f"protobuf wire type {wire}")


class _Walk:
    """One pass over a configuration tree; raises :class:`Refused` at the first object off the allowlist."""

    def __init__(self, filename):
        self.filename = filename
        self.names = known()
        self.classes = (self.names["layers"] | self.names["initializers"] | self.names["regularizers"]
                        | self.names["constraints"] | self.names["optimizers"] | self.names["losses"]
                        | self.names["metrics"] | self.names["dtype_policies"] | self.names["toolkit"]
                        | OP_LAYERS) - NOT_OBJECTS - set(REACHES_OUT)

    def refuse(self, what, why):
        raise Refused(f"'{self.filename}' is refused: {what} {why}. Nothing was loaded. Load it only if you "
                      "made the file and trust it (trusted loading).")

    def object_or_value(self, value, where, key=None):
        if isinstance(value, dict):
            if "class_name" in value:
                self.object(value, where)
            else:
                for name, item in value.items():
                    self.key(name, item, where)
        elif isinstance(value, list):
            for item in value:
                self.object_or_value(item, where, key)
        elif isinstance(value, str) and key in GROUP_NAMES:
            if value not in self.names[GROUP_NAMES[key]] - NOT_OBJECTS:
                self.refuse(f"the {key} '{value}' in {where}", "is not a built-in Keras function")
        elif isinstance(value, str) and key in LAYER_KEYS and value not in self.classes:
            self.refuse(f"the {key} '{value}' in {where}", "is not a built-in Keras layer")

    def key(self, name, value, where):
        if name in CODE_KEYS:
            self.refuse(f"the key '{name}' in {where}", "names code, and nothing here reads it")
        self.object_or_value(value, where, name)

    def object(self, obj, where):
        cls, config = obj.get("class_name"), obj.get("config")
        label = _label(obj, cls)
        here = f"{label} in {where}" if where else label
        if not isinstance(cls, str):
            self.refuse(here, "has a class name that is not a name")
        unknown = set(obj) - OBJECT_KEYS
        if unknown:
            self.refuse(here, f"holds the unknown key '{sorted(unknown)[0]}'")
        if cls in STRUCTURES:
            return self.inside(obj, here)
        if cls == "TypeSpec":
            if obj.get("type_spec") not in TYPE_SPECS:
                self.refuse(here, f"names the type spec '{obj.get('type_spec')}', which is not a tensor spec")
            return self.values(obj.get("serialized"), here)
        if cls == "function":
            return self.function(obj, here)
        module, registered = obj.get("module"), obj.get("registered_name")
        if cls in REACHES_OUT:
            self.refuse(here, REACHES_OUT[cls])
        if cls not in self.classes:
            self.refuse(here, "is not a built-in Keras class; its code is not part of Keras")
        if module not in MODULES:
            self.refuse(here, f"names the module '{module}', which is not a Keras module")
        if registered not in (None, cls):
            self.refuse(here, f"is registered as '{registered}', a custom object")
        if cls in OP_LAYERS:
            self.op_layer(cls, config if isinstance(config, dict) else {}, obj.get("inbound_nodes"), here)
        for name, value in obj.items():
            if name in ("class_name", "module", "registered_name") or (name == "config" and cls in OP_LAYERS):
                continue  # read above (an op layer's config by op_layer)
            self.object_or_value(value, here, name)

    def function(self, obj, here):
        """A function object of the Keras 3 format: ``{"module": "keras.activations", "class_name": "function",
        "config": "relu"}``."""
        groups = {"keras.activations": "activations", "keras.losses": "losses", "keras.metrics": "metrics"}
        group, name = groups.get(obj.get("module")), obj.get("config")
        if obj.get("registered_name") not in (None, name):
            self.refuse(here, f"is registered as '{obj.get('registered_name')}', a custom function")
        if group is None or not isinstance(name, str) or name not in self.names[group] - NOT_OBJECTS:
            self.refuse(here, f"names the function {obj.get('module')}.{name}, which is not a built-in Keras "
                              "activation, loss or metric")

    def op_layer(self, cls, config, nodes, here):
        """A layer that calls a named TensorFlow function on its inputs."""
        for name in config:
            if name not in ("name", "trainable", "dtype", "function", "cls_symbol", "method_name", "attr_name"):
                self.refuse(here, f"holds the unknown setting '{name}'")
        self.object_or_value(config.get("dtype"), here)
        if cls == "TFOpLambda":
            function = str(config.get("function"))
            if not tfops.allowed(function):
                self.refuse(here, f"calls tf.{function}, which {tfops.why_refused(function)}")
        elif cls == "SlicingOpLambda":
            function = str(config.get("function"))
            if function != "__operators__.getitem":
                self.refuse(here, f"calls tf.{function}, which {tfops.why_refused(function)}"
                                  if not tfops.allowed(function) else
                                  f"calls tf.{function}, but a slicing layer only ever calls __operators__.getitem")
        elif cls == "ClassMethod":
            owner, method = config.get("cls_symbol"), config.get("method_name")
            if method not in CLASS_METHODS.get(owner, ()):
                self.refuse(here, f"calls tf.{owner}.{method}, which is not a ragged or sparse tensor constructor")
        else:
            member = config.get("attr_name")
            if member not in INSTANCE_MEMBERS:
                self.refuse(here, f"uses the tensor member '{member}', which is not a ragged or sparse tensor member")
        self.op_arguments(nodes, here)

    def op_arguments(self, nodes, here):
        """No string reaches an op layer's function as a constant argument."""
        for entry in _node_entries(nodes):
            if entry[0] == "_CONSTANT_VALUE" and _has_string(entry[2] if len(entry) > 2 else None):
                self.refuse(here, "is given a string constant as its input, which can name a file or a command")
            kwargs = entry[3] if len(entry) > 3 else {}
            if not isinstance(kwargs, dict):
                continue
            for name, value in kwargs.items():
                if _has_string(value) and name not in STRING_KWARGS:
                    self.refuse(here, f"is given a string as its argument '{name}', which can name a file "
                                      "or a command")
            self.values(kwargs, here)

    def values(self, value, here):
        """Plain values (numbers, names, shapes) that may still nest objects: check those."""
        self.object_or_value(value, here)

    def inside(self, obj, here):
        """The values a structure marker (a tuple, a shape, a Keras tensor) holds."""
        for name, item in obj.items():
            if name != "class_name":
                self.key(name, item, here)


def _label(obj, cls):
    config = obj.get("config")
    name = obj.get("name") or (config.get("name") if isinstance(config, dict) else None)
    return f"layer '{name}' ({cls})" if isinstance(name, str) else f"the object {cls}"


def _node_entries(nodes):
    """Every inbound entry ``[layer or "_CONSTANT_VALUE", node, tensor, kwargs]`` of a layer, in any nesting."""
    if isinstance(nodes, list):
        if nodes and isinstance(nodes[0], str):
            yield nodes
            return
        for item in nodes:
            yield from _node_entries(item)
    elif isinstance(nodes, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        for value in nodes.get("args", []):
            if isinstance(value, str) or (isinstance(value, list) and _has_string(value)):
                yield ["_CONSTANT_VALUE", -1, value, {}]
        yield ["", 0, 0, nodes.get("kwargs", {})]


def _has_string(value):
    if isinstance(value, str):
        return True
    if isinstance(value, list):
        return any(_has_string(item) for item in value)
    if isinstance(value, dict):
        return any(_has_string(item) for key, item in value.items() if key != "class_name")
    return False
