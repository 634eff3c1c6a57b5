"""Which TensorFlow ops a Keras model file may name in safe mode.

A ``TFOpLambda`` layer in a Keras config does not store code: it names a
TensorFlow function (``"function": "math.multiply"``) that Keras looks up
under ``tf.`` when it loads the model. keras.applications MobileNetV3 writes
them for ``x * y`` and ``x + y``, and so does any functional model that
calls ``tf.nn.relu`` or writes ``x * 2.0 + 1.0`` on a Keras tensor.

Math, array and neural-net ops compute on tensors and nothing else, so they
load in safe mode. Anything else is refused unless the operator allows
trusted loading: in particular ops that reach files, processes, Python or
the network (``io.*``, ``py_function``, ``numpy_function``, ...), whose
names are listed so the refusal can say why.
"""

# Whole namespaces of pure tensor computation.
ALLOWED_PREFIXES = ("__operators__.", "math.", "nn.", "linalg.", "bitwise.", "signal.")

# Array, shape and image ops outside those namespaces (tf.reshape is "reshape" in a config).
ALLOWED_NAMES = frozenset({
    "abs", "add", "add_n", "argmax", "argmin", "argsort", "boolean_mask", "broadcast_to", "cast",
    "clip_by_norm", "clip_by_value", "concat", "cumsum", "divide", "einsum", "equal", "exp", "expand_dims",
    "eye", "fill", "gather", "gather_nd", "greater", "greater_equal", "identity", "less", "less_equal",
    "linspace", "logical_and", "logical_not", "logical_or", "matmul", "maximum", "minimum", "multiply",
    "norm", "not_equal", "one_hot", "ones", "ones_like", "pad", "pow", "range", "rank", "reduce_all",
    "reduce_any", "reduce_logsumexp", "reduce_max", "reduce_mean", "reduce_min", "reduce_prod", "reduce_sum",
    "repeat", "reshape", "reverse", "roll", "round", "scatter_nd", "shape", "sigmoid", "sign", "size",
    "slice", "sort", "split", "sqrt", "square", "squeeze", "stack", "stop_gradient", "strided_slice",
    "subtract", "tanh", "tensor_scatter_nd_update", "tile", "transpose", "truediv", "unstack", "where",
    "zeros", "zeros_like", "convert_to_tensor", "dtypes.cast",
    "image.resize", "image.resize_with_pad", "image.resize_with_crop_or_pad", "image.crop_to_bounding_box",
    "image.pad_to_bounding_box", "image.central_crop", "image.flip_left_right", "image.flip_up_down",
    "image.rgb_to_grayscale", "image.grayscale_to_rgb", "image.per_image_standardization",
    "image.convert_image_dtype", "image.extract_patches",
})

# What these reach, for the refusal's message (anything not allowed is refused, listed here or not).
REACHES = (
    (("io.", "compat.v1.io.", "gfile.", "saved_model.", "train.", "summary.", "data.", "lookup.",
      "compat.v1.gfile."), "files"),
    (("py_function", "numpy_function", "compat.v1.py_func", "autograph.", "function"), "Python code"),
    (("raw_ops.",), "any TensorFlow kernel, files and processes included"),
    (("distribute.", "tpu.", "experimental.dtensor."), "other processes or machines"),
    (("debugging.", "print", "strings.format"), "the program's output"),
)


def allowed(function):
    """True when a TFOpLambda naming ``function`` (e.g. ``"math.multiply"``) may load in safe mode."""
    name = str(function)
    return name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES)


def why_refused(function):
    """A short reason a TF op is refused in safe mode."""
    name = str(function)
    for prefixes, what in REACHES:
        if any(name == p.rstrip(".") or name.startswith(p) for p in prefixes):
            return f"can reach {what}"
    return "is not on the list of math, array and neural-net ops that load in safe mode"
