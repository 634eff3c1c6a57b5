"""Models that are not Keras models: a ``.tflite`` (from any framework) and a plain SavedModel.

People whose models come from PyTorch, JAX or ONNX reach LiteRT through their own converters
(litert-torch, jax2tf, onnx2tf), which all end in a float ``.tflite``; TensorFlow users export plain
SavedModels (``tf.saved_model.save``, Keras 3's ``model.export()``). Neither has a Keras model inside,
so each takes the schemes that need only its graph (:func:`optlib.engine.schemes.refusal` says which):

- a float ``.tflite`` *is* the float32 model; LiteRT Quantizer quantizes it directly;
- a plain SavedModel converts with TFLiteConverter (``from_saved_model``), so it takes every converter
  scheme, and LiteRT Quantizer's on its float32 conversion; its serving signature is the float reference;
- neither can be fine-tuned (the Model Optimization Toolkit trains Keras models).

A loaded one says what it is (``form``) and what it takes and gives (``ports``: :class:`~optlib.inputs.tasks.Port`
lists, as :func:`optlib.inputs.tasks.signature` returns for a Keras model). Loading happens only in a
sandboxed engine child, like every model file's.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from optlib.errors import InputError, first_line

FORMS = {"keras": "a Keras model", "savedmodel": "a SavedModel without Keras metadata",
         "tflite": "a float .tflite", "tflite-quantized": "a quantized .tflite"}
WHAT_FOLLOWS = {  # what a person can do with a model of each form, in one sentence for the Model & data page
    "keras": "",
    "savedmodel": "a SavedModel without Keras metadata: the converter's post-training schemes and LiteRT "
                  "Quantizer's run on it; training-time schemes need the Keras model.",
    "tflite": "a float .tflite: it is its own float32 baseline, and LiteRT Quantizer's schemes quantize it; the "
              "converter's and the training-time schemes need the Keras model or a SavedModel.",
    "tflite-quantized": "a .tflite that is already quantized: it is measured as it is (accuracy, size, latency, "
                        "where it runs) beside your other results; nothing converts or quantizes it again.",
}
TFLITE_MAGIC = b"TFL3"  # the flatbuffer file identifier, at bytes 4..8
QUANTIZED_TYPES = {"int8", "uint8", "int16", "int4", "float16"}  # weights stored so


@dataclass(eq=False)  # identity: engine caches key on the loaded model object
class TfliteModel:
    """A ``.tflite`` file as the model: its bytes, its inputs and outputs, and whether it is quantized."""

    name: str
    tflite: bytes
    ports: tuple  # (inputs, outputs), lists of Port
    quantized: bool = False
    submodules: tuple = ()
    layers: list = field(default_factory=list)  # its operators, in order
    parameters: int = 0

    @property
    def form(self):
        return "tflite-quantized" if self.quantized else "tflite"

    def count_params(self):
        return self.parameters


@dataclass(eq=False)  # identity: engine caches key on the loaded model object
class SavedModelGraph:
    """A plain SavedModel as the model: its folder, the signature used and its inputs and outputs.

    ``function`` is the loaded signature (a TensorFlow concrete function taking keyword tensors).
    """

    name: str
    folder: str
    signature: str
    ports: tuple
    function: object = None
    holder: object = None  # the loaded SavedModel object: the signature's variables live as long as it does
    submodules: tuple = ()
    layers: list = field(default_factory=list)
    parameters: int = 0
    form: str = "savedmodel"
    untrainable: str = ""  # why it cannot be fine-tuned, when its form alone does not say (a Keras 3 model)

    def count_params(self):
        return self.parameters

    def predict(self, xs):
        """Outputs of the signature on one batch: one array per output, in ``ports`` order."""
        from optlib._keras import tf

        inputs, outputs = self.ports
        feed = {p.name: tf().constant(x, dtype=p.dtype) for p, x in zip(inputs, xs)}
        found = self.function(**feed)
        return [np.asarray(found[o.name]) for o in outputs]


def tflite_form(path):
    """"tflite-quantized" when a ``.tflite`` stores any tensor in an integer or float16 type, else "tflite";
    read from the flatbuffer with LiteRT's generated schema (pure Python: no runtime, no code of the file)."""
    from ai_edge_litert import schema_py_generated as schema

    kinds = schema.TensorType
    quantized = {kinds.FLOAT16, kinds.UINT8, kinds.INT8, kinds.INT16, getattr(kinds, "INT4", -1)}
    try:
        model = schema.Model.GetRootAs(Path(path).read_bytes(), 0)
        for index in range(model.SubgraphsLength()):
            graph = model.Subgraphs(index)
            if any(graph.Tensors(i).Type() in quantized for i in range(graph.TensorsLength())):
                return "tflite-quantized"
    except Exception:  # noqa: BLE001 — a damaged flatbuffer: the runtime says what is wrong when it loads
        pass
    return "tflite"


def is_tflite(path):
    """Whether a file is a TFLite flatbuffer (its identifier), read without any runtime."""
    with open(path, "rb") as handle:
        return handle.read(8)[4:8] == TFLITE_MAGIC


def load_tflite(path):
    """Read a ``.tflite`` file as a model (in a sandboxed child: the runtime parses a stranger's file).

    Raises:
        InputError: not a readable TFLite model, or an input with unknown sizes.
    """
    from ai_edge_litert.interpreter import Interpreter

    from optlib._quiet import native_stderr

    path = Path(path)
    content = path.read_bytes()
    if content[4:8] != TFLITE_MAGIC:
        raise InputError(f"'{path.name}' is not a TFLite model (no TFL3 identifier); give a .tflite made by a "
                         "LiteRT converter.")
    try:
        with native_stderr():
            it = Interpreter(model_content=content, num_threads=1)
            it.allocate_tensors()
    except Exception as error:  # the runtime's own errors: unresolved custom ops, a damaged file
        raise InputError(f"'{path.name}' could not be read by LiteRT ({first_line(error, 160)}). A model with "
                         "custom or TensorFlow (Flex) ops cannot run here; convert it with built-in ops only.") \
            from None
    names_in, names_out = _signature_names(it)
    inputs = [_port(name, detail) for name, detail in zip(names_in, it.get_input_details())]
    outputs = [_port(name, detail) for name, detail in zip(names_out, it.get_output_details())]
    for port, detail in zip(inputs, it.get_input_details()):
        signature = detail.get("shape_signature")
        if signature is not None and any(int(d) < 0 for d in list(signature)[1:]):
            raise InputError(f"'{path.name}': input '{port.name}' has unknown sizes {tuple(signature[1:])}; "
                             "convert the model with a fixed input shape.")
    ops = it._get_ops_details()  # the public API has no op list; this is LiteRT's own helper
    made = {int(i) for op in ops for i in op["outputs"]} | {d["index"] for d in it.get_input_details()}
    weights = [t for t in it.get_tensor_details() if t["index"] not in made and t["shape"].size]
    quantized = any(np.dtype(t["dtype"]).name in QUANTIZED_TYPES for t in weights) \
        or any(np.dtype(d["dtype"]).name in QUANTIZED_TYPES for d in it.get_input_details())
    parameters = sum(int(np.prod(t["shape"])) for t in weights)
    return TfliteModel(path.stem, content, (inputs, outputs), quantized, parameters=parameters,
                       layers=[op["op_name"] for op in ops])


def _signature_names(it):
    """The names people gave the inputs and outputs (the serving signature's), or the tensors' names."""
    try:
        runner = it.get_signature_runner()
        ins, outs = runner.get_input_details(), runner.get_output_details()
        by_index_in = {d["index"]: n for n, d in ins.items()}
        by_index_out = {d["index"]: n for n, d in outs.items()}
        return ([by_index_in.get(d["index"], d["name"]) for d in it.get_input_details()],
                [by_index_out.get(d["index"], d["name"]) for d in it.get_output_details()])
    except (ValueError, RuntimeError):
        return [d["name"] for d in it.get_input_details()], [d["name"] for d in it.get_output_details()]


def _port(name, detail):
    from optlib.inputs.tasks import Port

    return Port(name, tuple(int(d) for d in detail["shape"][1:]), np.dtype(detail["dtype"]).name)


def load_saved_model(folder, signature=""):
    """Load a plain SavedModel's signature (in a sandboxed child; the allowlist checked its ops first).

    Raises:
        InputError: no such signature (the message lists them), or an input with unknown sizes.
    """
    from optlib._keras import tf
    from optlib.inputs.tasks import Port

    folder = Path(folder)
    try:
        loaded = tf().saved_model.load(str(folder))
    except Exception as error:  # TensorFlow raises many types for a bad SavedModel
        raise InputError(f"'{folder.name}' could not be read as a SavedModel ({first_line(error, 160)}).") from None
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    signature = signature or ("serving_default" if "serving_default" in signatures or len(signatures) != 1
                              else next(iter(signatures)))  # the only one (Keras 3's model.export() names it serve)
    if signature not in signatures:
        have = ", ".join(signatures) or "none"
        raise InputError(f"'{folder.name}' has no signature '{signature}' (it has: {have}); export it with a "
                         "serving_default signature.")
    function = signatures[signature]
    specs = function.structured_input_signature[1]
    inputs = []
    for name, spec in sorted(specs.items()):
        shape = tuple(spec.shape[1:])
        if any(d is None for d in shape):
            raise InputError(f"'{folder.name}': input '{name}' of signature '{signature}' has shape {shape} with "
                             "unknown sizes; export it with a fixed input shape.")
        inputs.append(Port(name, tuple(int(d) for d in shape), spec.dtype.name))
    outputs = [Port(name, tuple(spec.shape[1:]), spec.dtype.name)
               for name, spec in sorted(function.structured_outputs.items())]
    parameters = sum(int(np.prod(v.shape)) for v in getattr(loaded, "variables", ()) or ())
    return SavedModelGraph(folder.name, str(folder), signature, (inputs, outputs), function, loaded,
                           parameters=parameters)
