"""Generate short, runnable TensorFlow code that reproduces a result.

:func:`code_for` writes the plain TensorFlow / Model Optimization Toolkit
calls behind one run, from what the run recorded: its converter recipe, its
fine-tuning steps (``row["recipe"]``), its settings and its data recipe. The
code is for reading and teaching: the paths are variables at the top, each
step has a one-line comment, and nothing of optlib is needed to run it.

    >>> print(code_for(row, model_path="my_model.keras"))

Importing this module does not import TensorFlow.
"""

import json
import math
import pprint
import re
import textwrap

from optlib.analysis import quality
from optlib.engine import schemes
from optlib.engine.schemes.training import TECHNIQUES, step_of
from optlib.engine.schemes.training import code_name as _name
from optlib.engine.schemes.training import code_number as _number
from optlib.engine.store import flat

PATH_VARIABLES = ("MODEL_PATH", "SAMPLES_NPZ", "OUTPUT_PATH")

_SCALE = re.compile(r"^x / ([0-9.eE+-]+) -> \[(-1, 1|0, 1)\]$")

# What each converter setting means, said once beside the line that sets it.
_OPTIMIZATION_NOTES = {"DEFAULT": "optimize for size and latency (quantize)"}
_TYPE_NOTES = {"float16": "store weights as float16"}
_OPS_NOTES = {
    "TFLITE_BUILTINS_INT8": "integer-only kernels: fail rather than fall back to float",
    "EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8": "int16 activations, int8 weights",
}
def _recipe_of(row):
    """Return (converter recipe, training steps, note) of a row.

    A post-training run that did not finish has no stored recipe; its
    converter settings follow from the scheme and settings alone.
    """
    recipe = row.get("recipe")
    if isinstance(recipe, str):
        recipe = json.loads(recipe)
    if isinstance(recipe, dict) and ("converter" in recipe or "training" in recipe):
        return dict(recipe.get("converter") or {}), list(recipe.get("training") or []), ""
    if not schemes.known(row.get("scheme")):
        raise ValueError(f"Run #{row.get('id')} ({row.get('scheme')}) cannot be reproduced in code: no recipe was "
                         f"recorded for it, and optlib does not know the scheme '{row.get('scheme')}'.")
    scheme = schemes.get(row.get("scheme"))
    if scheme.variant_of:
        raise ValueError(f"Run #{row.get('id')} ({row.get('scheme')}, status {row.get('status')}) has no recorded "
                         "recipe to reproduce: which layers stay in float is known only once the run finished.")
    if scheme.family == "post-training":
        from optlib.engine.schemes.post_training import recipe_for

        if scheme.recipe is None:  # a scheme whose registry entry has no converter recipe
            raise ValueError(f"Run #{row.get('id')} ({scheme.name}) recorded no converter recipe, and optlib has no "
                             f"code template for the post-training scheme '{scheme.name}', so there is no code "
                             "to show for it.")
        settings = schemes.settings_for(scheme.name, row.get("settings") or {})
        note = f"This run ended '{row.get('status')}'; the converter settings follow from the scheme."
        return recipe_for(scheme.name, settings), [], note
    raise ValueError(f"Run #{row.get('id')} ({row.get('scheme')}, status {row.get('status')}) has no "
                     "recorded recipe to reproduce: only finished runs of training schemes do.")


def _selective_of(row):
    """Return the recorded selective-quantization facts of a run (int8_selective), or None."""
    recipe = row.get("recipe")
    if isinstance(recipe, str):
        recipe = json.loads(recipe)
    selective = recipe.get("selective") if isinstance(recipe, dict) else None
    return selective or None


# --- Pieces of the generated script ------------------------------------------

def _doc(text):
    """Make text safe inside the generated module docstring (no closing quotes, no escapes)."""
    return str(text).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _header(row, training, note):
    title = schemes.get(row["scheme"]).title if schemes.known(row.get("scheme")) else row.get("scheme")
    run = f", optlib run #{row['id']}" if row.get("id") is not None else ""
    settings = ", ".join(f"{k}={v}" for k, v in sorted((row.get("settings") or {}).items())
                         if k not in ("threads", "runs", "warmup"))
    lines = [f'"""Reproduce "{_doc(row.get("scheme"))}" ({_doc(title)}) with the settings optlib used.', "",
             _doc(f"Model {row.get('model')}, dataset {row.get('dataset')}{run}.")]
    if settings:
        lines += textwrap.wrap(_doc(f"Settings: {settings}."), 96)
    needs = "tensorflow, tf-keras" + (", tensorflow-model-optimization" if training else "") + (
        ", litert-quantizer" if _litert_quantizer_of(row) else "")
    lines.append(f"Needs: {needs}.")
    measured = []
    if isinstance(row.get("size_bytes"), (int, float)) and math.isfinite(row["size_bytes"]):
        measured.append(f"{int(row['size_bytes']):,} bytes")
    if quality.text(row):
        measured.append(f"{quality.text(row)} on LiteRT")
    if measured:
        lines.append(f"optlib measured: {', '.join(measured)}.")
    if note:
        lines.append(_doc(note))
    lines.append('"""')
    return lines


def _paths(row, model_path, samples_npz, output_path, needs_data):
    model = str(row.get("model") or "model")
    stem = model.rsplit(".", 1)[0] if "." in model else model
    zoo = "." not in model and "/" not in model
    if model_path is None:
        model_path = f"{model}.keras" if zoo else model
    lines = [(f"MODEL_PATH = {model_path!r}", "the Keras model" + (
        " (optlib's zoo model, saved with model.save)" if zoo else " (.keras, .h5 or SavedModel folder)"))]
    if needs_data:
        if row.get("dataset") == "digits":
            comment = "None: scikit-learn's digits, as optlib uses them; or a .npz with x_train, y_train"
        else:
            comment = f"raw arrays of dataset {row.get('dataset')!s}: x_train, y_train (or x_test, y_test)"
            if samples_npz is None:
                samples_npz = str(row.get("dataset") or "data.npz")
        lines.append((f"SAMPLES_NPZ = {samples_npz!r}", comment))
    if output_path is None:
        output_path = f"{stem}-{row.get('scheme')}.tflite"
    lines.append((f"OUTPUT_PATH = {output_path!r}", "where the .tflite file is written"))
    return lines


def _prepare(data_recipe):
    """The function that turns raw arrays into model inputs, following optlib's data recipe."""
    lines = ["def prepare(x):", '    """Raw arrays -> float32 model inputs, prepared as optlib prepared them."""',
             "    x = x.astype(np.float32)"]
    if not isinstance(data_recipe, dict) or not data_recipe.get("model_input"):
        return lines + ["    return x  # optlib recorded no data recipe: adapt this to your model's input", ""]
    scale = _SCALE.match(str(data_recipe.get("scale", "")))
    divisor = float(scale.group(1)) if scale else 1.0
    if divisor != 1.0:
        lines.append(f"    x = x / {divisor!r}  # {data_recipe['scale']}")
    model_input = [int(d) for d in data_recipe["model_input"]]
    if data_recipe.get("flatten") or len(model_input) == 1:
        lines.append("    x = x.reshape(len(x), -1)  # the model takes flat vectors")
    else:
        lines.append("    x = x[..., None] if x.ndim == 3 else x  # images get a channel axis")
        channels = str(data_recipe.get("channels", ""))
        if channels.endswith("-> 3"):
            lines.append(f"    x = np.repeat(x, 3, axis=3)  # channels {channels}")
        elif channels.endswith("-> 1"):
            lines.append(f"    x = x.mean(axis=3, keepdims=True)  # channels {channels}")
        if data_recipe.get("resize"):
            lines.append((f"    x = tf.image.resize(x, {tuple(model_input[:2])!r}).numpy()", str(data_recipe["resize"])))
    if scale and scale.group(2) == "-1, 1":
        lines.append("    x = x * 2.0 - 1.0  # the model expects [-1, 1]")
    return lines + ["    return x", ""]


def _load_raw(row, training):
    lines = ["def split(x, y):",
             '    """80/20 split with a fixed seed, stratified when possible (as optlib.inputs.readers does)."""',
             "    from sklearn.model_selection import train_test_split", "",
             "    counts = np.bincount(y.astype(np.int64))",
             "    stratify = y if min(c for c in counts if c) >= 2 else None",
             "    x_train, _, y_train, _ = train_test_split(",
             "        x, y, test_size=0.2, random_state=0, stratify=stratify)",
             "    return x_train, y_train", "", "",
             "def load_raw():",
             '    """Return the raw training images and labels."""']
    if row.get("dataset") == "digits":
        lines += ["    if SAMPLES_NPZ is None:  # scikit-learn's handwritten digits, 8x8, values 0-16",
                  "        from sklearn.datasets import load_digits", "",
                  "        digits = load_digits()",
                  '        return split(digits.images.astype("float32"), digits.target)']
    lines += ["    with np.load(SAMPLES_NPZ) as bundle:",
              '        if "x_train" in bundle:',
              '            return bundle["x_train"], bundle["y_train"]',
              '        if "x" in bundle:  # one x/y pair: optlib splits it 80/20',
              '            return split(bundle["x"], bundle["y"])']
    if training:
        lines.append('        raise KeyError("Fine-tuning needs x_train and y_train (or x and y).")')
    else:
        lines.append('        return bundle["x_test"], bundle["y_test"]  # no training split: use the test one')
    return lines + [""]


def _fine_tune(settings):
    values = {key: settings.get(key, schemes.TRAINING_PARAMS[i].default)
              for i, key in enumerate(("epochs", "batch_size", "learning_rate", "seed"))}
    numbers = {key: _number(value, key) for key, value in values.items()}
    return [
        "# Fine-tuning settings of this run.",
        f"EPOCHS, BATCH_SIZE, LEARNING_RATE, SEED = {numbers['epochs']}, {numbers['batch_size']}, "
        f"{numbers['learning_rate']}, {numbers['seed']}",
        'FROM_LOGITS = getattr(getattr(model.layers[-1], "activation", None), "__name__", "") != "softmax"',
        "", "",
        "def fine_tune(model, callbacks=()):",
        '    """One fine-tuning stage, as optlib runs each: Adam, sparse cross-entropy, fixed seed."""',
        "    keras.utils.set_random_seed(SEED)",
        "    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE),",
        "                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=FROM_LOGITS),",
        '                  metrics=["accuracy"])',
        "    model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=True,",
        "              callbacks=list(callbacks), verbose=2)",
        "", "",
    ]


def _step(number, step):
    """One recorded fine-tuning step as code, from its technique's row (:data:`TECHNIQUES`)."""
    kind = step.get("step")
    found = step_of(kind)
    return [f"# {number}. {found.note}.", *found.code(step), ""]


# How optlib converts a Keras model (optlib.engine.convert): from its inference function, the same graph and
# file as from_keras_model without writing the whole model as a SavedModel first; what cannot be traced that
# way converts through from_keras_model. The tests check that this code remakes optlib's file byte for byte.
KERAS_CONVERTER = [
    "def keras_converter(model):",
    '    """A converter for the model\'s inference function (training=False), signature serving_default."""',
    "    try:",
    "        if not model.inputs or not model.output_names:",
    "            raise ValueError(\"not a functional model\")",
    "        specs = [tf.TensorSpec([None, *tensor.shape[1:]], tensor.dtype, name=name)",
    "                 for name, tensor in zip(model.input_names, model.inputs)]",
    "",
    "        def call(*xs):",
    "            found = model(list(xs) if len(xs) > 1 else xs[0], training=False)",
    "            found = found if isinstance(found, (list, tuple)) else [found]",
    "            return dict(zip(model.output_names, found))",
    "",
    "        concrete = tf.function(call).get_concrete_function(*specs)",
    "        holder = tf.Module()",
    "        holder.variables_of_the_model = list(model.variables)  # what the function reads",
    "        return tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)",
    "    except Exception:  # a model this cannot trace: TensorFlow's own path",
    "        return tf.lite.TFLiteConverter.from_keras_model(model)",
    "",
    "",
]


def _converter(converter, form="keras", signature="serving_default"):
    if form == "savedmodel":  # the loaded signature, as optlib converts it (see optlib.engine.convert)
        lines = ["loaded = tf.saved_model.load(MODEL_PATH)",
                 f"serving = loaded.signatures[{_name(signature, 'signature')!r}]",
                 "converter = tf.lite.TFLiteConverter.from_concrete_functions([serving], loaded)"]
    else:
        lines = [*KERAS_CONVERTER, "converter = keras_converter(model)"]
    optimizations = [_name(o, "optimization") for o in converter.get("optimizations") or []]
    if optimizations:
        names = ", ".join(f"tf.lite.Optimize.{o}" for o in optimizations)
        notes = "; ".join(_OPTIMIZATION_NOTES.get(o, o) for o in optimizations)
        lines.append((f"converter.optimizations = [{names}]", notes))
    else:
        lines.append("# No optimization: a plain float32 conversion.")
    types = [_name(t, "supported type") for t in converter.get("supported_types") or []]
    if types:
        notes = "; ".join(_TYPE_NOTES.get(t, t) for t in types)
        lines.append((f"converter.target_spec.supported_types = [{', '.join(f'tf.{t}' for t in types)}]", notes))
    ops = [_name(o, "ops set") for o in converter.get("supported_ops") or []]
    if ops:
        notes = "; ".join(_OPS_NOTES.get(o, o) for o in ops)
        lines.append((f"converter.target_spec.supported_ops = [{', '.join(f'tf.lite.OpsSet.{o}' for o in ops)}]",
                      notes))
    if converter.get("representative_samples"):
        lines.append(("converter.representative_dataset = representative_dataset", "calibrates activation ranges"))
    for key in ("inference_input_type", "inference_output_type"):
        if converter.get(key):
            lines.append((f"converter.{key} = tf.{_name(converter[key], key)}",
                          "integer model " + ("input" if "input" in key else "output")))
    return lines


def _selective(selective, calibrate):
    """Convert through TensorFlow Lite's QuantizationDebugger with the recorded nodes kept in float."""
    nodes = selective.get("denylisted_nodes")
    if not isinstance(nodes, list) or not nodes or not all(isinstance(n, str) and n for n in nodes):
        raise ValueError(f"Cannot generate code: the nodes kept in float {nodes!r} are not a list of names.")
    if not calibrate:
        raise ValueError("Cannot generate code: selective quantization needs the calibration inputs, and this "
                         "run recorded none.")
    return ["", "# Selective quantization: int8 everywhere except these nodes, which stay in float (the layers",
            "# that quantized worst and the layers reading their output, which would quantize it again).",
            "DENYLISTED_NODES = [", *[f"    {node!r}," for node in nodes], "]",
            "debugger = tf.lite.experimental.QuantizationDebugger(",
            "    converter=converter,",
            ("    debug_dataset=representative_dataset,", "the same calibration inputs"),
            "    debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=DENYLISTED_NODES),",
            ")",
            ("tflite_model = debugger.get_nondebug_quantized_model()", "the selective model, without debug ops")]


def _litert_quantizer_of(row):
    """Return the recorded LiteRT Quantizer facts of a run (lq_ schemes), or None."""
    recipe = row.get("recipe")
    if isinstance(recipe, str):
        recipe = json.loads(recipe)
    return (recipe.get("litert_quantizer") if isinstance(recipe, dict) else None) or None


def _plain_data(value, what):
    """Return ``value`` if it is plain data (str, number, bool, None, lists and dicts of them): safe as a literal."""
    if isinstance(value, dict):
        return {_plain_data(k, what): _plain_data(v, what) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_data(v, what) for v in value]
    if value is None or isinstance(value, (str, bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return value
    raise ValueError(f"Cannot generate code: the {what} holds {value!r}, which is not plain data.")


def _litert_quantizer(lq, calibrate, converted=True):
    """Quantize the float32 conversion with the run's LiteRT Quantizer recipe, calibrated like optlib did."""
    entries = _plain_data(lq.get("recipe"), "LiteRT Quantizer recipe")
    if not isinstance(entries, list) or not entries:
        raise ValueError("Cannot generate code: the run recorded no LiteRT Quantizer recipe.")
    signature = _plain_data(lq.get("signature") or "serving_default", "signature")
    lines = [("float_model = converter.convert()", "the float32 LiteRT model LiteRT Quantizer starts from"), ""]
    lines = (lines if converted else []) + [
             "# LiteRT Quantizer's recipe as this run recorded it (plain data): which algorithm, on which ops",
             "# (regex on each op's output tensor names), with how many bits.",
             *f"RECIPE = {pprint.pformat(entries, width=96, sort_dicts=False)}".splitlines(), "",
             "qt = quantizer.Quantizer(float_model)",
             "qt.load_quantization_recipe(RECIPE)"]
    if calibrate:
        name = _plain_data(lq.get("input"), "input name")
        lines += [("samples = [{" + f"{name!r}: sample[None, ...]" + "} for sample in calibration]",
                   "one input at a time, with a batch axis"),
                  ("calibration_result = qt.calibrate({" + f"{signature!r}: samples" + "})",
                   "activation ranges, per tensor"),
                  "result = qt.quantize(calibration_result)"]
    else:
        lines.append(("result = qt.quantize()", "no calibration: weights only"))
    return lines + [("tflite_model = bytes(result.quantized_model)", "what result.export_model(path) would write")]


def code_for(row, model_path=None, samples_npz=None, output_path=None):
    """Return Python source that reproduces one run with plain TensorFlow.

    Args:
        row: a result row (:func:`optlib.engine.store.result_row`), a stored row, or a
            row of :func:`optlib.analysis.report.frame` as a dict/Series; it needs
            ``scheme``, ``settings`` and ``recipe`` (``{"converter": {...},
            "training": [steps]}``), and uses ``model``, ``dataset`` and
            ``data_recipe`` to name files and prepare inputs.
        model_path: value of ``MODEL_PATH`` in the code (default: the model's name).
        samples_npz: value of ``SAMPLES_NPZ``, the ``.npz`` of raw arrays
            (``x_train``, ``y_train``, or ``x_test``, ``y_test``) used for
            calibration and fine-tuning. Default: ``None`` (scikit-learn's
            digits) for the built-in digits, else the dataset's file name.
            The variable appears only when the recipe needs data.
        output_path: value of ``OUTPUT_PATH`` (default ``MODEL-SCHEME.tflite``).

    A selective int8 run (``recipe["selective"]["denylisted_nodes"]``) converts
    through ``tf.lite.experimental.QuantizationDebugger`` with
    ``QuantizationDebugOptions(denylisted_nodes=...)`` and
    ``get_nondebug_quantized_model()``, so the recorded nodes stay in float.

    Returns:
        The source code: it sets ``TF_USE_LEGACY_KERAS=1`` before importing
        TensorFlow, uses ``tf_keras``, loads the model from ``MODEL_PATH``,
        prepares data the way optlib did when the recipe needs it, repeats
        the fine-tuning steps with the run's settings, converts with the
        run's converter settings and writes ``OUTPUT_PATH``.

    Raises:
        ValueError: the row has no recipe to reproduce (an unfinished
            training run) or holds values that are not plain names or numbers.
    """
    row = flat(row)
    converter, training, note = _recipe_of(row)
    settings = row.get("settings") or {}
    if isinstance(settings, str):
        settings = json.loads(settings)
    lq = _litert_quantizer_of(row)
    calibrate = bool(converter.get("representative_samples") or (lq or {}).get("calibration_samples"))
    needs_data = calibrate or bool(training)

    code = _header(row, training, note)
    code += ["", "import os", "",
             ('os.environ["TF_USE_LEGACY_KERAS"] = "1"',
              "Keras 2 (tf_keras), which the Model Optimization Toolkit needs; set before importing TensorFlow"),
             ""]
    if needs_data:
        code.append("import numpy as np")
    form = row.get("model_form") or "keras"  # a Keras model, a plain SavedModel, or a .tflite (float or not)
    code += ["import tensorflow as tf"] + (["import tf_keras as keras"] if form == "keras" else [])
    if training:
        code.append("import tensorflow_model_optimization as tfmot")
    if lq:
        code.append("from litert_quantizer import quantizer")
    code += [""] + _paths(row, model_path, samples_npz, output_path, needs_data) + [""]
    if needs_data:
        code += [""] + _load_raw(row, bool(training)) + [""] + _prepare(row.get("data_recipe")) + [""]
    if form == "keras":
        code.append("model = keras.models.load_model(MODEL_PATH, compile=False)")
    elif form.startswith("tflite"):
        code += ["with open(MODEL_PATH, \"rb\") as source:",
                 ("    float_model = source.read()", "the .tflite itself: nothing to convert")]
    if needs_data:
        code.append("x_raw, y_raw = load_raw()")
    if training:
        code += ["x_train, y_train = prepare(x_raw), y_raw.astype(np.int64)", ""]
        code += _fine_tune(settings)
        used = {step.get("step") for step in training}
        for technique in TECHNIQUES.values():
            if used & set(technique.steps):
                code += technique.imports
        code.append("")
        for number, step in enumerate(training, 1):
            code += _step(number, step)
    if calibrate:
        count = int(_number(int(converter.get("representative_samples") or lq["calibration_samples"]),
                            "representative_samples"))
        code += ["", f"# Calibration: the same {count} inputs optlib drew (fixed seed, in index order).",
                 f"picks = np.sort(np.random.default_rng(0).permutation(len(x_raw))[:{count}])",
                 "calibration = prepare(x_raw[picks])", ""]
        if not lq:
            code += ["", "def representative_dataset():",
                     "    for sample in calibration:",
                     "        yield [sample[None, ...]]  # one input at a time, with a batch axis", "", ""]
    else:
        code.append("")
    if form.startswith("tflite"):
        code += _litert_quantizer(lq, calibrate, converted=False) if lq else ["tflite_model = float_model"]
    else:
        code += _converter(converter, form, row.get("model_signature") or "serving_default")
    selective = None if lq or form.startswith("tflite") else _selective_of(row)
    if form.startswith("tflite"):
        pass
    elif lq:
        code += _litert_quantizer(lq, calibrate)
    else:
        code += _selective(selective, calibrate) if selective else ["tflite_model = converter.convert()"]
    code += ["",
             'with open(OUTPUT_PATH, "wb") as sink:',
             "    sink.write(tflite_model)",
             'print(f"Wrote {OUTPUT_PATH}: {len(tflite_model):,} bytes")', ""]
    return _render(code)


def _render(lines, width=100):
    """Join lines; a ``(code, comment)`` pair gets its comment inline, or above it when too long."""
    out = []
    for line in lines:
        if isinstance(line, tuple):
            text, comment = line
            if len(text) + len(comment) + 4 <= width:
                out.append(f"{text}  # {comment}")
            else:
                indent = text[:len(text) - len(text.lstrip())]
                out += [f"{indent}# {comment[0].upper()}{comment[1:]}.", text]
        else:
            out.append(line)
    return "\n".join(out)


# --- The bundle's measure.py -------------------------------------------------------

_MEASURE_BODY = '''

def load_test():
    """The test images and labels optlib measured on, or None when the data is not here."""
    if SAMPLES_NPZ is None:  # scikit-learn's handwritten digits, 8x8, values 0-16, split as optlib splits them
        from sklearn.datasets import load_digits

        digits = load_digits()
        return split_test(digits.images.astype("float32"), digits.target)
    if not os.path.exists(SAMPLES_NPZ):
        return None
    with np.load(SAMPLES_NPZ) as arrays:
        if "x_test" in arrays and "y_test" in arrays:
            return arrays["x_test"], arrays["y_test"]
        if "x" in arrays and "y" in arrays:  # one x/y pair: optlib keeps 20% for the test
            return split_test(arrays["x"], arrays["y"])
    return None


def split_test(x, y):
    """The 20% test part of an 80/20 split with a fixed seed, stratified when possible (as optlib.inputs.readers)."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y.astype(np.int64))
    stratify = y if min(c for c in counts if c) >= 2 else None
    _, x_test, _, y_test = train_test_split(x, y, test_size=0.2, random_state=0, stratify=stratify)
    return x_test, y_test


def to_input(sample, detail):
    """One prepared sample as the model's input tensor: a batch axis, quantized if the input is integer."""
    sample = sample[None, ...]
    scale, zero_point = detail["quantization"]
    if np.issubdtype(detail["dtype"], np.integer) and scale:
        info = np.iinfo(detail["dtype"])
        sample = np.clip(np.round(sample / scale + zero_point), info.min, info.max)
    return sample.astype(detail["dtype"]).reshape(detail["shape"])


interpreter = Interpreter(model_path=TFLITE_PATH, num_threads=THREADS)
interpreter.allocate_tensors()
inputs, output = interpreter.get_input_details(), interpreter.get_output_details()[0]
test = load_test() if CHECK_ACCURACY and len(inputs) == 1 else None
if test is not None:
    x_test, y_test = prepare(test[0]), np.asarray(test[1]).astype(np.int64)
    sample = [to_input(x_test[0], inputs[0])]
else:
    sample = [np.zeros(detail["shape"], detail["dtype"]) for detail in inputs]

# Latency: warm up, then time each invoke on one sample; the median is the figure (as optlib reports it).
for detail, value in zip(inputs, sample):
    interpreter.set_tensor(detail["index"], value)
for _ in range(WARMUP):
    interpreter.invoke()
times = []
for _ in range(RUNS):
    start = time.perf_counter()
    interpreter.invoke()
    times.append((time.perf_counter() - start) * 1000.0)
times.sort()
print(f"{TFLITE_PATH}: {os.path.getsize(TFLITE_PATH):,} bytes")
print(f"latency: median {statistics.median(times):.4g} ms, p10 {times[len(times) // 10]:.4g} ms, "
      f"p90 {times[(len(times) * 9) // 10]:.4g} ms over {RUNS} invokes after {WARMUP} warm-up, {THREADS} thread(s)"
      f"; optlib measured a median of {MEASURED_MS} ms on {MEASURED_ON}")

# Accuracy: top-1 of the .tflite on the test images, one at a time.
if test is None:
    print(f"accuracy: not checked ({NO_CHECK})")
else:
    correct = 0
    for image, label in zip(x_test, y_test):
        interpreter.set_tensor(inputs[0]["index"], to_input(image, inputs[0]))
        interpreter.invoke()
        correct += int(np.argmax(interpreter.get_tensor(output["index"])[0]) == label)
    print(f"top-1: {correct / len(y_test):.2%} on {len(y_test)} test samples; optlib measured {MEASURED_TOP1}")
'''


def measure_for(row, tflite_path):
    """Return Python source that measures a run's ``.tflite`` again on another machine: latency with the LiteRT
    interpreter (``ai_edge_litert``: warm-up, repeated invokes, the median) and, for a classifier whose data is
    at hand (scikit-learn's digits, or the recipe's ``.npz`` beside the script), top-1 on the test split.

    Needs numpy and ai-edge-litert (and scikit-learn for the digits or an x/y split); never TensorFlow unless
    the data recipe resizes images.
    """
    row = flat(row)
    settings = row.get("settings") if isinstance(row.get("settings"), dict) else {}
    latency = row.get("latency_ms") if isinstance(row.get("latency_ms"), dict) else {}
    dataset = str(row.get("dataset") or "")
    classifier = quality.name(row) == quality.TOP1 and quality.value(row) is not None
    samples = None if dataset == "digits" else dataset if dataset.endswith(".npz") else ""  # "": not readable here
    check = classifier and samples != ""
    if not classifier:
        no_check = f"the run is measured by {quality.name(row)}, not top-1" if quality.value(row) is not None \
            else "the run has no accuracy to compare with"
    elif samples == "":
        no_check = f"the dataset {dataset} is not an .npz or scikit-learn's digits"
    elif samples is None:
        no_check = "scikit-learn's digits could not be read"
    else:
        no_check = f"put {samples} beside this script"
    prepare = _prepare(row.get("data_recipe"))
    if any("tf.image.resize" in str(line) for line in prepare):
        prepare.insert(2, "    import tensorflow as tf  # only to resize the images as optlib did")
    threads = int(_number(int(row.get("threads") or latency.get("threads") or 1), "threads"))
    runs = int(_number(int(settings.get("runs") or latency.get("runs") or 50), "runs"))
    warmup = int(_number(int(settings.get("warmup") or latency.get("warmup") or 5), "warmup"))
    measured_ms = f"{latency['median']:.4g}" if latency.get("median") is not None else "nothing"
    lines = [f'"""Measure {_doc(tflite_path)} again on this machine: its latency and, where the data is here, '
             "its top-1.", "",
             _doc(f"Model {row.get('model')}, dataset {dataset}, scheme {row.get('scheme')} "
                  f"(optlib run #{row.get('id')})."),
             "Needs: numpy, ai-edge-litert" + (", scikit-learn" if check else "") + ".",
             '"""', "", "import os", "import statistics", "import time", "", "import numpy as np",
             "from ai_edge_litert.interpreter import Interpreter", "",
             (f"TFLITE_PATH = {str(tflite_path)!r}", "the optimized model"),
             (f"SAMPLES_NPZ = {samples or None!r}", "None: scikit-learn's digits; else the recipe's .npz "
              "(x_test, y_test; or x, y)") if check else "SAMPLES_NPZ = None",
             f"CHECK_ACCURACY = {check!r}",
             (f"THREADS, WARMUP, RUNS = {threads}, {warmup}, {runs}", "as optlib timed it"),
             f"MEASURED_MS, MEASURED_ON = {measured_ms!r}, {str(row.get('host') or 'an unknown host')!r}",
             f"MEASURED_TOP1 = {quality.text(row) or 'nothing'!r}",
             f"NO_CHECK = {no_check!r}", "", ""] + prepare
    return _render(lines) + _MEASURE_BODY
