"""Keras 3 ``.keras`` files rebuilt as tf_keras (Keras 2) models, for the Model Optimization Toolkit.

TensorFlow 2.21's ``import keras`` is Keras 3; the toolkit (QAT, pruning, clustering) needs a tf_keras
model. A Keras 3 file is a zip of ``config.json``, ``metadata.json`` and ``model.weights.h5``, which
tf_keras cannot read. :func:`rebuild` translates the configuration into a tf_keras one, builds it from
built-in tf_keras classes only (no custom objects, no ``Lambda``) and sets every weight from the
weights file, layer by layer:

- a ``DTypePolicy`` becomes its name; ``batch_shape`` becomes ``batch_input_shape``; a
  ``__keras_tensor__`` inbound entry becomes a tf_keras node entry ``[layer, node, tensor, {kwargs}]``;
- a setting that the tf_keras class does not take is dropped only when its value means "nothing"
  (``None``, or a default in :data:`NEUTRAL`); any other is refused (:class:`NotTranslated`);
- a layer class, an activation or an initializer with no Keras 2 twin is refused
  (:class:`NoKeras2Twin`), naming the layer; nothing is dropped or guessed;
- the weights of a layer sit at ``layers/<snake_case class name>[_<n>]/vars/<i>`` (Keras 3 names
  them by class and position, not by layer name); nested models add ``layers/...`` levels, and the
  layers in :data:`PARTS` keep theirs in named parts. Every array in the file must find its place.

:func:`max_difference` then runs the file with Keras 3 itself and the rebuilt model on the same inputs,
so the caller can record how faithful the rebuild is (0.0 on the models the tests make).

The caller runs :func:`optlib.inputs.allowlist.check` first and calls :func:`rebuild` only inside a
sandboxed child: this module trusts nothing it has not translated, but Keras still builds the layers.
:func:`is_keras3` reads the archive without TensorFlow.
"""

import inspect
import io
import json
import re
import zipfile
from pathlib import Path

from optlib.errors import InputError
from optlib.inputs import archive

MODELS = ("Sequential", "Functional")
# Layers that keep their weights in named parts (Keras 3's attribute names) instead of their own
# ``vars``; the parts are listed in the order of the tf_keras layer's ``weights``.
PARTS = {
    "LSTM": ("cell",),
    "GRU": ("cell",),
    "SimpleRNN": ("cell",),
    "Bidirectional": ("forward_layer/cell", "backward_layer/cell"),
    "TimeDistributed": ("layer",),
    "MultiHeadAttention": ("query_dense", "key_dense", "value_dense", "output_dense"),
}
# Keras 3 settings that tf_keras has no argument for, with the values that change nothing.
NEUTRAL = {"optional": (False,), "use_cudnn": ("auto",), "flash_attention": (None,), "synchronized": (False,),
           "lora_rank": (None,), "lora_alpha": (None,), "quantization_config": (None,),
           "use_gate": (False,), "rms_scaling": (False,)}
# Settings tf_keras reads from ``**kwargs`` rather than naming them in ``__init__``.
KWARGS_READ = {"input_dim", "input_shape", "batch_input_shape", "batch_size", "weights", "activity_regularizer",
               "autocast", "implementation", "zero_output_for_mask", "synchronized", "input_length"}
# Same name in both Kerases, a different function (checked on a grid of inputs on 2026-12-06).
DIFFERENT_ACTIVATIONS = {"hard_sigmoid": "Keras 3's is relu6(x + 3) / 6, Keras 2's clip(0.2 x + 0.5, 0, 1)"}
OBJECT_GROUPS = {"keras.initializers": "initializers", "keras.regularizers": "regularizers",
                 "keras.constraints": "constraints"}


class NoKeras2Twin(InputError):
    """A Keras 3 layer (or its activation, initializer...) that has no Keras 2 equivalent."""


class NotTranslated(InputError):
    """A Keras 3 setting or weight layout that this rebuild does not translate (it refuses rather than guess)."""


def is_keras3(path):
    """True when ``path`` is a ``.keras`` archive written by Keras 3. Reads the archive; no TensorFlow.

    Keras 3 writes ``metadata.json`` with its ``keras_version``; without one, a configuration that names
    ``keras.layers`` modules or holds ``__keras_tensor__`` nodes is Keras 3's (tf_keras writes neither).
    """
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    try:
        archive.check(path)
        with zipfile.ZipFile(path) as bundle:
            names = set(bundle.namelist())
            if "metadata.json" in names:
                version = str(json.loads(bundle.read("metadata.json")).get("keras_version", ""))
                if version:
                    return version.startswith("3")
            if "config.json" not in names:
                return False
            text = bundle.read("config.json").decode("utf-8")
    except (InputError, zipfile.BadZipFile, OSError, ValueError, AttributeError):
        return False
    return '"__keras_tensor__"' in text or _names_keras3_module(json.loads(text))


def _names_keras3_module(value):
    if isinstance(value, dict):
        return value.get("module") == "keras.layers" or any(_names_keras3_module(v) for v in value.values())
    if isinstance(value, list):
        return any(_names_keras3_module(v) for v in value)
    return False


def rebuild(path):
    """Build a tf_keras model from a Keras 3 ``.keras`` file's configuration and weights.

    Args:
        path: a Keras 3 ``.keras`` file that :func:`optlib.inputs.allowlist.check` has passed.

    Returns:
        (model, facts): the tf_keras model (not compiled) and plain data about the rebuild:
        ``keras_version`` (of the file), ``layers`` (one ``{"name", "class_name", "weights"}`` per
        translated layer, nested ones named ``outer/inner``), ``weights`` (arrays set, which is every
        array in the file), ``dropped`` (``{"layer": ["setting", ...]}``: Keras 3 settings left out
        because their value changes nothing) and ``call_arguments_dropped`` (e.g. the ``training=False``
        Keras 3 records while it builds, which tf_keras would otherwise fix for good).

    Raises:
        NoKeras2Twin: a layer, activation or initializer has no Keras 2 equivalent (named).
        NotTranslated: a setting or weight layout that the rebuild does not translate (named).
        InputError: the file is not a readable Keras 3 archive.
    """
    import h5py

    from optlib._keras import keras

    path = Path(path)
    config, metadata, weights_bytes = _read(path)
    translator = _Translator(keras())
    model = keras().models.model_from_json(json.dumps(translator.model(config)))
    with h5py.File(io.BytesIO(weights_bytes), "r") as store:
        placed = _Weights(store)
        placed.model(config, model, "", "")
        left = sorted(placed.all - placed.used)
    if left:
        raise NotTranslated(f"'{path.name}': the weights {', '.join(left[:3])} found no layer in the rebuilt "
                            "model; it was not rebuilt.")
    layers = [{**layer, "weights": placed.counts.get(layer["name"], 0)} for layer in translator.layers]
    return model, {"keras_version": metadata.get("keras_version"), "layers": layers, "weights": len(placed.used),
                   "dropped": translator.dropped, "call_arguments_dropped": sorted(translator.call_dropped)}


def max_difference(path, model, xs):
    """The largest absolute difference between the Keras 3 file's outputs and ``model``'s on ``xs``.

    Loads the file with Keras 3 itself (``keras.saving.load_model(path, safe_mode=True, compile=False)``),
    which works in the same process as tf_keras. Call it where :func:`rebuild` may run (a sandboxed child).

    Args:
        path: the Keras 3 ``.keras`` file.
        model: the tf_keras model from :func:`rebuild`.
        xs: an array, or a list of arrays (one per input, in the model's input order).
    """
    import numpy as np

    from optlib._keras import keras as tf_keras

    tf_keras()  # TF_USE_LEGACY_KERAS and TensorFlow first; Keras 3 imports beside it
    import keras

    original = keras.saving.load_model(str(path), safe_mode=True, compile=False)
    ours = model(xs, training=False)
    theirs = original(xs, training=False)
    pairs = list(zip(_flat(ours), _flat(theirs), strict=True))
    return max(float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))
               for a, b in pairs)


def _flat(outputs):
    if isinstance(outputs, dict):
        return [outputs[k] for k in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return [leaf for item in outputs for leaf in _flat(item)]
    return [outputs]


def _read(path):
    """(config, metadata, weights bytes) of a Keras 3 archive, every member's size checked first."""
    archive.check(path)
    try:
        with zipfile.ZipFile(path) as bundle:
            config = json.loads(bundle.read("config.json"))
            metadata = json.loads(bundle.read("metadata.json")) if "metadata.json" in bundle.namelist() else {}
            weights = bundle.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise InputError(f"'{path.name}' is not a readable Keras 3 .keras file (config.json, model.weights.h5)."
                         ) from None
    if not isinstance(config, dict) or config.get("class_name") not in MODELS:
        raise NotTranslated(f"'{path.name}' holds a {config.get('class_name') if isinstance(config, dict) else '?'}"
                            " model; only Sequential and Functional Keras 3 models can be rebuilt as Keras 2.")
    return config, metadata, weights


def _snake_case(name):
    """Keras 3's ``naming.to_snake_case``: how its weights file names a layer's group."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _init_arguments(cls):
    """Every argument name the ``__init__`` methods of ``cls`` and its bases take, and whether one takes ``**``."""
    names, open_ended = set(), False
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for parameter in list(inspect.signature(init).parameters.values())[1:]:
            if parameter.kind is parameter.VAR_KEYWORD:
                open_ended = True
            elif parameter.kind is not parameter.VAR_POSITIONAL:
                names.add(parameter.name)
    return names, open_ended


def _call_arguments(cls):
    """The names of a tf_keras layer's ``call`` arguments after its inputs."""
    parameters = list(inspect.signature(cls.call).parameters.values())[2:]
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _name(entry):
    return (entry.get("config") or {}).get("name") or entry.get("name")


def _skips_first_node(entry):
    """Whether tf_keras gives this nested model a node of its own before its first call (its Input)."""
    layers = (entry.get("config") or {}).get("layers") or [{}]
    return entry.get("class_name") == "Functional" or (
        entry.get("class_name") == "Sequential" and layers[0].get("class_name") == "InputLayer")


def _histories(value):
    """Every ``keras_history`` ``[layer, node, tensor]`` in a node's arguments."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            yield (value.get("config") or {}).get("keras_history")
        else:
            for item in value.values():
                yield from _histories(item)
    elif isinstance(value, list):
        for item in value:
            yield from _histories(item)


def _check_graph(config, model):
    """Every input of every node names a node that exists, and no node depends on itself.

    tf_keras rebuilds a functional graph by retrying nodes until all are made, so a reference to a node that
    never comes would keep it retrying for ever; refuse those first.
    """
    layers = config.get("layers") or []
    nodes = {_name(e): (1 if e.get("class_name") == "InputLayer" else len(e.get("inbound_nodes") or []))
             for e in layers}
    needs = {}
    for entry in layers:
        for index, node in enumerate(entry.get("inbound_nodes") or []):
            needs[(_name(entry), index)] = [tuple(h[:2]) for h in _histories(node)]
    ends = [tuple(h[:2]) for h in _references(config.get("input_layers")) + _references(config.get("output_layers"))]
    for source in [ref for refs in needs.values() for ref in refs] + ends:
        if not (len(source) == 2 and source[0] in nodes and isinstance(source[1], int)
                and 0 <= source[1] < nodes[source[0]]):
            raise NotTranslated(f"the Keras 3 model '{model}' names an input {list(source)} that is no layer's "
                                "output; it is not a model that can be rebuilt.")
    state = {}
    for start in needs:
        stack = [(start, iter(needs[start]))]
        state[start] = "open"
        while stack:
            node, rest = stack[-1]
            following = next(rest, None)
            if following is None:
                state[node] = "done"
                stack.pop()
            elif state.get(following) == "open":
                raise NotTranslated(f"the Keras 3 model '{model}' has a layer that depends on its own output; "
                                    "it is not a model that can be rebuilt.")
            elif following not in state:
                state[following] = "open"
                stack.append((following, iter(needs.get(following, ()))))


def _references(value):
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [value]
    return [ref for item in value or [] for ref in _references(item)] if isinstance(value, list) else []


class _Translator:
    """Keras 3 configuration -> tf_keras configuration; remembers what it translated and dropped."""

    def __init__(self, k2):
        self.k2 = k2
        self.layers, self.dropped, self.call_dropped = [], {}, set()
        self.shift = {}  # {nested model name: 1}: tf_keras counts a nested model's own first node, Keras 3 not

    def model(self, obj, prefix=""):
        cls, config = obj["class_name"], obj.get("config") or {}
        name = config.get("name", "?")
        if cls == "Sequential":
            layers = [self.layer(entry, prefix) for entry in config.get("layers", [])]
            out = {"name": name, "layers": layers}
            if config.get("build_input_shape") is not None:
                out["build_input_shape"] = config["build_input_shape"]
        else:
            _check_graph(config, name)
            outer, self.shift = self.shift, {_name(e): 1 for e in config["layers"] if _skips_first_node(e)}
            out = {"name": name, "layers": [self.layer(entry, prefix) for entry in config["layers"]],
                   "input_layers": config["input_layers"],
                   "output_layers": self.references(config["output_layers"])}
            self.shift = outer
        if config.get("trainable") is False:
            raise NotTranslated(f"the Keras 3 model '{name}' is frozen (trainable=False); the rebuild does not "
                                "carry that over, so it is not rebuilt.")
        return {"class_name": cls, "config": out}

    def layer(self, entry, prefix, listed=True):
        """One layer entry; ``listed``: it is one of a model's layers (not the layer a wrapper holds)."""
        cls, config = entry.get("class_name"), dict(entry.get("config") or {})
        name = config.get("name") or entry.get("name") or "?"
        where = f"{prefix}{name}"
        if cls in MODELS:
            out = self.model(entry, prefix=f"{where}/")
        else:
            twin = getattr(self.k2.layers, str(cls), None)
            if not (inspect.isclass(twin) and issubclass(twin, self.k2.layers.Layer)):
                raise NoKeras2Twin(f"Keras 3 layer '{where}' ({cls}) has no Keras 2 equivalent, so the model "
                                   "cannot be rebuilt for the Model Optimization Toolkit.")
            out = {"class_name": cls, "config": self.settings(twin, config, where, cls)}
            if cls == "MultiHeadAttention":  # tf_keras's from_config builds it from the shapes it was called on
                shapes = (entry.get("build_config") or {}).get("shapes_dict") or {}
                out["config"].update(query_shape=shapes.get("query_shape"), value_shape=shapes.get("value_shape"),
                                     key_shape=shapes.get("key_shape") or shapes.get("value_shape"))
        if listed:
            self.layers.append({"name": where, "class_name": cls})
        if "inbound_nodes" in entry:
            twin = self.k2.models.Model if cls in MODELS else getattr(self.k2.layers, cls)
            out["name"] = entry.get("name", name)
            out["inbound_nodes"] = [self.node(node, twin, where) for node in entry["inbound_nodes"]]
        return out

    def settings(self, twin, config, where, cls):
        accepted, open_ended = _init_arguments(twin)
        if open_ended:
            accepted |= KWARGS_READ
        out = {}
        for key, value in config.items():
            if key == "batch_shape":
                key = "batch_input_shape"
            if key not in accepted:
                if value is None or value in NEUTRAL.get(key, ()):
                    self.dropped.setdefault(where, []).append(key)
                    continue
                raise NotTranslated(f"Keras 3 layer '{where}' ({cls}) sets {key}={json.dumps(value)[:60]}, which "
                                    "has no Keras 2 equivalent; the model was not rebuilt.")
            out[key] = self.value(key, value, where)
        return out

    def value(self, key, value, where):
        """A setting's value: nested layers, objects (initializers...), dtype policies, activations."""
        if key in ("layer", "backward_layer", "cell") and isinstance(value, dict) and "class_name" in value:
            return self.layer(value, f"{where}/", listed=False)
        if key == "dtype":
            return self.dtype(value, where)
        if key in ("activation", "recurrent_activation"):
            return self.activation(value, where)
        if isinstance(value, dict) and value.get("class_name") == "__tuple__":
            return [self.value(None, item, where) for item in value["config"]["value"]]
        if isinstance(value, dict) and "class_name" in value:
            return self.object(value, where)
        if isinstance(value, list):
            return [self.value(None, item, where) for item in value]
        return value

    def dtype(self, value, where):
        if isinstance(value, dict):
            cls, name = value.get("class_name"), (value.get("config") or {}).get("name")
            if cls not in ("DTypePolicy", "FloatDTypePolicy", "Policy") or not isinstance(name, str):
                raise NoKeras2Twin(f"Keras 3 layer '{where}' uses the dtype policy {cls} ({name}), which has no "
                                   "Keras 2 equivalent.")
            return name
        return value

    def activation(self, value, where):
        if isinstance(value, dict):  # {"module": "keras.activations", "class_name": "function", "config": "relu"}
            if value.get("class_name") != "function" or value.get("module") != "keras.activations":
                raise NoKeras2Twin(f"Keras 3 layer '{where}' uses the activation {value.get('class_name')}, "
                                   "which has no Keras 2 equivalent.")
            value = value.get("config")
        if value is None:
            return None
        why = DIFFERENT_ACTIVATIONS.get(value)
        try:
            self.k2.activations.get(value)
        except (ValueError, TypeError):
            why = "Keras 2 has none"
        if why:
            raise NoKeras2Twin(f"Keras 3 layer '{where}' uses the activation '{value}', which has no Keras 2 "
                               f"equivalent ({why}).")
        return value

    def object(self, obj, where):
        """An initializer, regularizer or constraint."""
        cls, group = obj.get("class_name"), OBJECT_GROUPS.get(obj.get("module"))
        twin = getattr(getattr(self.k2, group), str(cls), None) if group else None
        if not inspect.isclass(twin):
            raise NoKeras2Twin(f"Keras 3 layer '{where}' uses {obj.get('module')}.{cls}, which has no Keras 2 "
                               "equivalent.")
        accepted, _ = _init_arguments(twin)
        config = {}
        for key, value in (obj.get("config") or {}).items():
            if key in accepted:
                config[key] = self.value(key, value, where)
            elif value is not None and value not in NEUTRAL.get(key, ()):
                raise NotTranslated(f"Keras 3 layer '{where}' uses {cls} with {key}={json.dumps(value)[:60]}, "
                                    "which has no Keras 2 equivalent; the model was not rebuilt.")
        return {"class_name": cls, "config": config}

    def node(self, node, twin, where):
        """``{"args": [...], "kwargs": {...}}`` -> ``[[layer, node, tensor, kwargs], ...]``."""
        args, kwargs = node.get("args", []), dict(node.get("kwargs") or {})
        if not args:
            raise NotTranslated(f"Keras 3 layer '{where}' is called without inputs; the model was not rebuilt.")
        names = _call_arguments(twin)
        for name, value in zip(names, args[1:]):  # tf_keras passes every input after the first by name
            kwargs[name] = value
        if len(args) - 1 > len(names):
            raise NotTranslated(f"Keras 3 layer '{where}' is called with {len(args)} inputs, more than its Keras 2 "
                                "twin takes; the model was not rebuilt.")
        out_kwargs = {}
        for key, value in kwargs.items():
            if key == "training" or (value is None and key not in names):
                self.call_dropped.add(f"{where}: {key}={json.dumps(value)}")  # training follows the caller
                continue
            if key not in names:
                raise NotTranslated(f"Keras 3 layer '{where}' is called with {key}=..., which its Keras 2 twin "
                                    "does not take; the model was not rebuilt.")
            out_kwargs[key] = self.call_value(value, where)
        return [[*self.history(tensor, where), out_kwargs] for tensor in self.tensors(args[0], where)]

    def tensors(self, value, where):
        if isinstance(value, list):
            return [t for item in value for t in self.tensors(item, where)]
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            return [value]
        raise NotTranslated(f"Keras 3 layer '{where}' takes a constant as an input; the model was not rebuilt.")

    def history(self, tensor, where):
        history = (tensor.get("config") or {}).get("keras_history")
        if not (isinstance(history, list) and len(history) == 3 and isinstance(history[0], str)):
            raise NotTranslated(f"Keras 3 layer '{where}' has an input with no layer history; not rebuilt.")
        return self.references(history)

    def references(self, value):
        """``[layer, node, tensor]`` (or a list of them) with tf_keras's node numbering."""
        if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
            return [value[0], value[1] + self.shift.get(value[0], 0), value[2]]
        return [self.references(item) for item in value]

    def call_value(self, value, where):
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            return self.history(value, where)
        if isinstance(value, (dict, list)):
            raise NotTranslated(f"Keras 3 layer '{where}' is called with a structured argument; not rebuilt.")
        return value


class _Weights:
    """Sets each rebuilt layer's weights from the Keras 3 weights file, checking count and shapes."""

    def __init__(self, store):
        self.store, self.used, self.counts = store, set(), {}
        self.all = set()  # the model's arrays: a compiled model's file also holds its optimizer's state, not needed
        store.visititems(lambda name, item: self.all.add(name)
                         if hasattr(item, "shape") and not name.startswith("optimizer/") else None)

    def model(self, config, model, group, prefix):
        """``config``: the Keras 3 model entry; ``group``: its path in the file ("" at the top); ``prefix``: the
        names of the models it sits in ("outer/")."""
        entries = (config.get("config") or {}).get("layers", [])
        if config["class_name"] == "Sequential" and entries and entries[0].get("class_name") == "InputLayer":
            entries = entries[1:]  # Keras 3's Sequential.layers leaves its InputLayer out
        seen = {}
        for entry in entries:
            key = _snake_case(entry["class_name"])
            seen[key] = seen.get(key, -1) + 1
            path = f"{group}layers/{key}" + (f"_{seen[key]}" if seen[key] else "")
            name = (entry.get("config") or {}).get("name") or entry.get("name")
            layer = model.get_layer(name)
            if entry["class_name"] in MODELS:
                self.model(entry, layer, f"{path}/", f"{prefix}{name}/")
            else:
                self.counts[f"{prefix}{name}"] = self.layer(entry["class_name"], layer, path)

    def arrays(self, path):
        """The arrays ``path/vars/0, 1, ...`` in order."""
        vars_ = self.store.get(f"{path}/vars")
        count = len(vars_) if vars_ is not None else 0
        names = [f"{path}/vars/{i}" for i in range(count)]
        self.used.update(names)
        return [self.store[n][()] for n in names]

    def layer(self, cls, layer, path):
        parts = PARTS.get(cls, ())
        arrays = [a for part in parts for a in self.arrays(f"{path}/{part}")] if parts else self.arrays(path)
        inside = sorted(n for n in self.all if n.startswith(f"{path}/") and n not in self.used)
        if inside:
            raise NotTranslated(f"Keras 3 layer '{layer.name}' ({cls}) keeps weights at {inside[0]}, which the "
                                "rebuild does not map to its Keras 2 twin; the model was not rebuilt.")
        expected = [tuple(w.shape) for w in layer.weights]
        if [a.shape for a in arrays] != expected:
            raise NotTranslated(f"Keras 3 layer '{layer.name}' ({cls}) has weights of shapes "
                                f"{[a.shape for a in arrays]}; its Keras 2 twin has {expected}. Not rebuilt.")
        if arrays:
            layer.set_weights(arrays)
        return len(arrays)
