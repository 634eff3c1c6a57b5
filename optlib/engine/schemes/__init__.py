"""The one registry of optimization schemes.

The CLI, the store, the sweep, the pages and the tests all read this
registry. A scheme is one entry (:class:`Scheme`) and every fact of it is
there: its name, family, what it needs, its settings with defaults, its
backend and recipe (TFLiteConverter settings, a LiteRT Quantizer recipe name,
or the fine-tuning techniques and the conversion after them), the scheme it
stands beside, the tables it is a column of, the wizard's leaves that
recommend it and what the wizard says of it there, and the dotted path of the
one builder of its kind (imported only when the scheme runs, so this module
stays light).

Read it through two calls: :func:`get` (one entry, or an error listing the
known names) and :func:`list_schemes` (entries filtered by name pattern,
family, backend, technique, table or wizard leaf). :func:`counterparts` pairs each
converter scheme with LiteRT Quantizer's. Plugins add entries with
:func:`register`.

    >>> from optlib.engine import schemes
    >>> schemes.names()[:3]
    ('float32', 'float16', 'dynamic')
    >>> schemes.get("int8").needs
    'representative'
    >>> schemes.counterpart("int8")
    'lq_int8'
"""

import fnmatch
import importlib
import math
import os
from dataclasses import dataclass, field

from optlib.errors import InputError

FAMILY_TITLES = {"post-training": "Post-training", "training-time": "Training-time", "combination": "Combinations"}
FAMILIES = tuple(FAMILY_TITLES)
NEEDS = {
    "nothing": "no data",
    "representative": "an unlabelled representative sample (100-500 inputs)",
    "training": "labelled training data and a short fine-tune",
}


# What makes a post-training model ("given": nothing does, a quantized .tflite is measured as it is).
BACKENDS = {"converter": "TFLiteConverter", "litert-quantizer": "LiteRT Quantizer", "given": "The file as given"}
GROUPS = ("Measurement", "Calibration", "Training", "Pruning and clustering", "LiteRT Quantizer")  # how settings are shown


@dataclass(frozen=True)
class Param:
    """One setting of a scheme: name, default, what it means, and the values it accepts.

    Attributes:
        choices: the accepted values, for a setting that takes one of a few.
        min, max: inclusive bounds of a number.
        label: its name on a form; group: where the form shows it (one of GROUPS, or a new one).
    """

    name: str
    default: object
    help: str
    choices: tuple = ()
    min: float | None = None
    max: float | None = None
    label: str = ""
    group: str = ""

    @property
    def title(self):
        return self.label or self.name.replace("_", " ").capitalize()

    def parse(self, text):
        """Turn a value given as text (CLI, form) into the default's type, and check it.

        Raises:
            InputError: the value does not fit this setting.
        """
        value = text
        try:
            if isinstance(self.default, bool):
                if str(text).lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value = str(text).lower() in ("true", "1", "yes")
            elif isinstance(self.default, int):
                value = int(text)
            elif isinstance(self.default, float):
                value = float(text)
            else:
                value = str(text)
        except ValueError:
            raise InputError(
                f"Setting '{self.name}' needs a {type(self.default).__name__}, got {text!r}."
            ) from None
        return self.check(value)

    def check(self, value):
        """Return ``value`` if this setting accepts it (a number within its range, one of its choices).

        Raises:
            InputError: naming the accepted range or values.
        """
        if self.choices and value not in self.choices:
            raise InputError(
                f"Setting '{self.name}' must be one of {', '.join(map(str, self.choices))}; got {value!r}."
            )
        if not isinstance(self.default, (int, float)) or isinstance(self.default, bool):
            return value
        kind = type(self.default).__name__
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or (kind == "int" and not float(value).is_integer()):
            raise InputError(f"Setting '{self.name}' needs a{'n' if kind == 'int' else ''} {kind}, got {value!r}.")
        value = int(value) if kind == "int" else float(value)
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            low = "" if self.min is None else f"from {self.min:g} "
            high = "" if self.max is None else f"to {self.max:g}"
            raise InputError(f"Setting '{self.name}' must be {low}{high}".rstrip() + f"; got {value!r}.")
        return value


@dataclass(frozen=True)
class Candidate:
    """A place in the accuracy-targeted search's order: try this scheme, with these settings, at this rank."""

    objective: str  # "size" or "latency"
    rank: int
    settings: dict = field(default_factory=dict, compare=False)


ADVICE_ROLES = ("primary", "follow-up", "alternative")  # the wizard's roles, in the order a leaf lists them


@dataclass(frozen=True)
class Advice:
    """What the wizard (:mod:`optlib.guide.wizard`) says about a scheme at one leaf of its decision tree.

    Attributes:
        role: one of ADVICE_ROLES: "primary" (try first), "follow-up" (try next if the primary falls short)
            or "alternative" (a different trade-off).
        reason: why, in one or two plain sentences.
        source: id of the document the advice comes from (a key of ``optlib.guide.wizard.SOURCES``).
    """

    role: str
    reason: str
    source: str


@dataclass(frozen=True)
class Scheme:
    """An optimization scheme as data.

    Attributes:
        name: stable identifier (CLI, store, pages).
        family: one of FAMILIES.
        title: short human name.
        summary: one sentence on what it does and what to expect.
        needs: key of NEEDS: what data the scheme requires.
        builder: "module:function" that builds the TFLite model.
        params: scheme-specific settings.
        techniques: toolkit techniques it applies, in order (for pre-flight checks).
        variant_of: for a variant of another scheme (e.g. int8_selective of int8), that scheme.
        color: its colour in every chart.
        tradeoff: what to expect in size, speed and accuracy (the Wizard quotes it).
        slower_because: why it can be slower than float32, when it can (explanations quote it).
        recipe: what its backend makes the model with, as data: a converter scheme's TFLiteConverter settings;
            a training scheme's converter settings after fine-tuning (QAT's ``{"optimizations": ["DEFAULT"]}``);
            a LiteRT Quantizer scheme's ``{"base": named LiteRT Quantizer recipe}``.
        search: where the accuracy-targeted search tries it (:class:`Candidate` entries).
        backend: for a post-training scheme, what makes its model: a key of BACKENDS.
        counterpart_of: for a LiteRT Quantizer scheme, the converter scheme that makes the same quantization
            (:func:`counterpart` pairs them both ways).
        tables: the reproductions of the guide's tables it is a column of ("table1", "table2"; a training
            scheme in Table 1 runs only when asked for).
        activations: what its activations compute in, where Table 2 compares that ("float32", "int8", "int16").
        layer_insight: the layer comparison of the Layer insight page reads its run.
        takes: the model forms it can start from (:data:`optlib.inputs.graph_models.FORMS`): a Keras model
            for fine-tuning, a Keras model or SavedModel for the converter, a float ``.tflite`` too for
            LiteRT Quantizer (:func:`refusal` says why not for the others).
        effort: how long a run takes next to the others (building and measuring), roughly; it sets only the
            order a sweep starts its jobs in (:func:`optlib.engine.sweep.dispatch_order`). 0: from its kind
            (:attr:`cost`).
        advice: where the wizard recommends it: {leaf id of the wizard's tree (``optlib.guide.wizard.leaves()``):
            :class:`Advice`}. A leaf lists every scheme advised for it, primary first, then follow-ups, then
            alternatives (ADVICE_ROLES), in registry order within a role; ``list_schemes(advised_for=leaf)``
            finds them.
    """

    name: str
    family: str
    title: str
    summary: str
    needs: str
    builder: str
    params: tuple = field(default_factory=tuple)
    techniques: tuple = ()
    variant_of: str = ""  # a variant runs only when named; "all" and the families leave it out
    color: str = ""
    tradeoff: str = ""
    slower_because: str = ""
    recipe: dict | None = field(default=None, compare=False)
    search: tuple = ()
    slower_source: str = ""  # where slower_because comes from (a source id of optlib.guide.wizard), if cited
    backend: str = ""
    takes: tuple = ("keras",)
    counterpart_of: str = ""
    tables: tuple = ()
    activations: str = ""
    layer_insight: bool = False
    effort: int = 0
    advice: dict = field(default_factory=dict, compare=False)

    @property
    def cost(self):
        """``effort``, or from its kind: 10 per fine-tune technique, 2 with a calibration, else 1."""
        if self.effort:
            return self.effort
        if self.techniques:
            return 10 * len(self.techniques)
        return 2 if self.needs == "representative" else 1

    @property
    def prunes(self):
        return "prune" in self.techniques

    @property
    def preserve(self):
        """Which structure its quantization-aware training keeps: "prune", "cluster", "prune_cluster" or ""."""
        if "quantize" not in self.techniques:
            return ""
        return "_".join(t for t in ("prune", "cluster") if t in self.techniques)

    def build_function(self):
        module, function = self.builder.split(":")
        return getattr(importlib.import_module(module), function)


# Settings every scheme of a kind shares. Measurement settings belong to all.
MEASURE_PARAMS = (
    Param("threads", 1, "interpreter threads for the latency figure (Table 1 used one big core)",
          min=1, max=64, label="Threads", group="Measurement"),
    Param("runs", 50, "at least this many timed invokes for the latency figure (and at least 0.3 s of them)",
          min=1, max=10_000, label="Timed runs", group="Measurement"),
    Param("warmup", 5, "at least this many untimed invokes before timing (and at least 0.1 s of them)",
          min=0, max=1_000, label="Warm-up runs", group="Measurement"),
)
REPRESENTATIVE_PARAMS = (
    Param("rep_samples", 200, "inputs in the representative (calibration) sample, 100-500 is typical",
          min=1, max=5_000, label="Representative samples", group="Calibration"),
)
TRAINING_PARAMS = (
    Param("epochs", 2, "fine-tuning epochs on the training split", min=1, max=1_000, label="Epochs", group="Training"),
    Param("batch_size", 32, "fine-tuning batch size", min=1, max=4_096, label="Batch size", group="Training"),
    Param("learning_rate", 1e-4, "fine-tuning learning rate (Adam)", min=1e-7, max=1.0, label="Learning rate",
          group="Training"),
    Param("seed", 0, "random seed, so a run can be repeated", min=0, max=2**31 - 1, label="Seed", group="Training"),
    Param("train_samples", 0, "fine-tune on at most this many training samples (0: all of them)",
          min=0, max=10_000_000, label="Training samples (0: all)", group="Training"),
)
SPARSITY = Param("sparsity", 0.5, "target share of zero weights in each prunable kernel", min=0.0, max=0.99,
                 label="Sparsity", group="Pruning and clustering")
CLUSTERS = Param("clusters", 16, "number of clusters (unique values) per kernel", min=2, max=256,
                 label="Clusters", group="Pruning and clustering")
CENTROIDS = Param(
    "centroids", "kmeans_plus_plus", "how cluster centroids start",
    ("kmeans_plus_plus", "linear", "density_based", "random"), label="Centroid start", group="Pruning and clustering",
)
INT8_IO = Param("int8_io", False, "integer (int8) model input and output, as integer-only hardware needs",
                label="int8 input and output", group="Calibration")
PTQ_AFTER_PRUNING = Param("ptq", "none", "post-training quantization after pruning", ("none", "int8"),
                          label="Quantize after pruning", group="Pruning and clustering")

# TFLiteConverter settings of the post-training schemes, as data.
INT8_RECIPE = {"optimizations": ["DEFAULT"], "supported_ops": ["TFLITE_BUILTINS_INT8"]}


CONVERTIBLE = ("keras", "savedmodel")  # what TFLiteConverter converts
FLOAT_GRAPHS = CONVERTIBLE + ("tflite",)  # what has (or converts to) a float32 .tflite


QAT_RECIPE = {"optimizations": ["DEFAULT"]}  # the conversion after quantization-aware training


def _ptq(name, title, summary, needs, extra=(), **facts):
    params = (REPRESENTATIVE_PARAMS if needs == "representative" else ()) + tuple(extra)
    return Scheme(name, "post-training", title, summary, needs,
                  "optlib.engine.schemes.post_training:build", params, backend="converter",
                  takes=FLOAT_GRAPHS if name == "float32" else CONVERTIBLE, **facts)


def _trained(name, family, title, summary, techniques, extra=(), **facts):
    return Scheme(name, family, title, summary, "training", "optlib.engine.schemes.training:build",
                  TRAINING_PARAMS + tuple(extra), techniques, **facts)


def _tries(*places):
    """Search candidates from (objective, rank[, settings]) tuples."""
    return tuple(Candidate(*place) for place in places)


# Sources of the wizard's advice (keys of optlib.guide.wizard.SOURCES, which has their titles).
_GUIDE, _PTQ_ADVICE = "tflite_guide", "apx_optimization_techniques"

# Colours: the baseline grey, post-training blues and greens, training-time warm colours, combinations darker.
# Trade-offs: from the guide's technique table, its Tables 1 and 2, and this project's measurements.
_ALL = (
    _ptq("float32", "Float32 baseline",
         "Plain TFLite conversion with no optimization: the baseline every other scheme is compared to.",
         "nothing", color="#7f7f7f", recipe={}, tables=("table1", "table2"), layer_insight=True,
         activations="float32",
         tradeoff="The baseline: the size and accuracy of the original model."),
    _ptq("float16", "Float16 weights",
         "Weights stored as float16: about half the size, insignificant accuracy loss; runs on CPU and GPU.",
         "nothing", color="#1f77b4",
         recipe={"optimizations": ["DEFAULT"], "supported_types": ["float16"]},
         tradeoff="Up to 50% smaller with insignificant accuracy loss; faster only "
                  "where the hardware computes in float16, such as GPUs.",
         slower_because="float16 weights are turned back into float32 before a CPU computes with them",
         search=_tries(("size", 6), ("latency", 3)),
         advice={  # what the wizard says of it at leaves of its tree (optlib.guide.wizard)
             "dynamic_cpu": Advice(
                 "alternative", "It also needs no data and loses less accuracy, but halves the model instead of "
                 "quartering it.", _GUIDE),
             "float16_cpu": Advice(
                 "primary", "Without data, float16 is the method with an insignificant accuracy loss, and it halves "
                 "the model.", _GUIDE),
             "float16_gpu": Advice(
                 "primary", "GPUs compute in float16 natively, so this halves the model and can speed it up with an "
                 "insignificant accuracy loss.", _PTQ_ADVICE),
             "float16_dynamic_android_gpu": Advice(
                 "primary", "The GPU delegate computes in float16, so this halves the model with an insignificant "
                 "accuracy loss and needs no data.", _PTQ_ADVICE),
             "float16_int8_android_gpu": Advice(
                 "primary", "The GPU delegate computes in float16, so this halves the model with an insignificant "
                 "accuracy loss.", _PTQ_ADVICE),
             "float16_int8_cpu": Advice(
                 "primary", "Float16 has an insignificant accuracy loss and halves the model.", _GUIDE),
             "float16_prune_cluster_gpu": Advice(
                 "primary", "GPUs compute in float16 natively, so this halves the file and the download with an "
                 "insignificant accuracy loss.", _PTQ_ADVICE),
         }),
    _ptq("dynamic", "Dynamic range",
         "Weights stored as int8, activations quantized on the fly: up to 75% smaller; can be slower than float on x86 CPUs.",
         "nothing", color="#17becf", recipe={"optimizations": ["DEFAULT"]},
         tradeoff="Up to 75% smaller with the smallest accuracy loss of the "
                  "integer methods; speed-ups on ARM CPUs, often a slow-down on x86.",
         slower_because="activations are quantized on the fly at every inference, and x86 float kernels are "
                        "already fast",
         search=_tries(("size", 2), ("latency", 6)),
         advice={  # what the wizard says of it at leaves of its tree (optlib.guide.wizard)
             "dynamic_cpu": Advice(
                 "primary", "It needs no data and quantizes the weights to int8, the simplest post-training method "
                 "and a good starting point.", _PTQ_ADVICE),
             "float16_cpu": Advice(
                 "alternative", "It needs no data either and makes the model about 4x smaller, with a small accuracy "
                 "loss to measure.", _PTQ_ADVICE),
             "float16_dynamic_android_gpu": Advice(
                 "alternative", "The technique table lists Android GPUs for dynamic range too; it makes the model "
                 "about 4x smaller without data.", _GUIDE),
             "integer_needs_samples": Advice(
                 "alternative", "Nothing that needs no data runs on integer-only hardware; dynamic range only "
                 "previews the size on a CPU while you gather 100-500 representative samples for int8.", _PTQ_ADVICE),
             "int8_cpu": Advice(
                 "alternative", "It needs no calibration and is almost as small, but is often slower on x86 CPUs.",
                 _PTQ_ADVICE),
             "int16x8_cpu": Advice(
                 "alternative", "It keeps activations in float and quantizes them on the fly, so it is faster on CPU "
                 "than int16x8 while protecting sensitive activations.", _PTQ_ADVICE),
         }),
    _ptq("int8", "Full integer",
         "Weights and activations int8, calibrated on a representative sample: up to 75% smaller and fast on integer hardware.",
         "representative", (INT8_IO,), color="#2ca02c", recipe=INT8_RECIPE, tables=("table1", "table2"),
         layer_insight=True, activations="int8",
         tradeoff="Up to 75% smaller and usually the fastest on CPU and accelerators; "
                  "a small accuracy loss that depends on the model.",
         search=_tries(("size", 1), ("latency", 1)),
         advice={  # what the wizard says of it at leaves of its tree (optlib.guide.wizard)
             "float16_int8_android_gpu": Advice(
                 "alternative", "Your samples allow full integer quantization, which the technique table lists for "
                 "Android GPUs as well; it makes the model about 4x smaller.", _GUIDE),
             "float16_int8_cpu": Advice(
                 "alternative", "Full integer quantization is about 4x smaller and usually the fastest on CPU; "
                 "measure whether its small accuracy loss is acceptable.", _PTQ_ADVICE),
             "int8_cpu": Advice(
                 "primary", "Your samples allow full integer quantization, which usually gives the greatest size "
                 "reduction and speed-up.", _PTQ_ADVICE),
             "int8_integer": Advice(
                 "primary", "Integer-only hardware needs full integer quantization: convert with integer-only ops "
                 "and int8 input and output, calibrated on your samples.", _PTQ_ADVICE),
             "int8_int16x8_integer": Advice(
                 "primary", "Integer-only hardware needs full integer quantization: convert with integer-only ops "
                 "and int8 input and output, calibrated on your samples.", _PTQ_ADVICE),
             "int8_qat_cpu": Advice(
                 "primary", "Start with post-training quantization: it is quick and usually gives the greatest size "
                 "reduction and speed-up.", _GUIDE),
             "int8_qat_integer": Advice(
                 "primary", "Start with post-training quantization: integer-only hardware needs integer-only ops and "
                 "int8 input and output.", _GUIDE),
             "int8_integer_qat_optional": Advice(
                 "primary", "Integer-only hardware needs full integer quantization, and a loss of a few points "
                 "leaves room for post-training quantization.", _GUIDE),
             "int8_qat_int16x8_integer": Advice(
                 "primary", "Integer-only hardware needs full integer quantization: convert with integer-only ops "
                 "and int8 input and output.", _PTQ_ADVICE),
             "int8_prune_cluster_cpu": Advice(
                 "primary", "Quantization shrinks the file and the download about 4x, so start there.", _GUIDE),
             "int8_prune_cluster_qat_integer": Advice(
                 "primary", "Integer-only hardware needs full integer quantization; start with the post-training "
                 "tool.", _GUIDE),
         }),
    _ptq("int16x8", "int16 activations, int8 weights",
         "Full integer with int16 activations: better accuracy than int8 for activation-sensitive models; reference kernels are slow.",
         "representative", color="#bcbd22",
         recipe={"optimizations": ["DEFAULT"],
                 "supported_ops": ["EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8"]},
         tradeoff="About the size of int8 with accuracy close to float, but it runs "
                  "on slow reference kernels.",
         slower_because="TFLite has only reference (unoptimized) kernels for int16 activations",
         slower_source="tflite_guide", tables=("table2",), layer_insight=True, activations="int16",
         search=_tries(("size", 5), ("latency", 7)),
         advice={  # what the wizard says of it at leaves of its tree (optlib.guide.wizard)
             "int16x8_cpu": Advice(
                 "primary", "The guide recommends int16 activations when activations are sensitive to quantization; "
                 "they keep accuracy close to float at about int8 size.", _GUIDE),
             "int8_int16x8_integer": Advice(
                 "follow-up", "For activation-sensitive models the guide recommends int16 activations, where the "
                 "hardware or its software supports them.", _GUIDE),
             "int8_qat_int16x8_integer": Advice(
                 "alternative", "For activation-sensitive models the guide recommends int16 activations, where the "
                 "hardware or its software supports them.", _GUIDE),
         }),
    _trained("qat", "training-time", "Quantization-aware training",
             "Fine-tune with simulated int8 quantization, then convert to int8: the smallest accuracy loss of the int8 options.",
             ("quantize",), REPRESENTATIVE_PARAMS, color="#d62728", recipe=QAT_RECIPE, tables=("table1",),
             tradeoff="Up to 75% smaller with the smallest accuracy loss (MobileNetV2 lost "
                      "1 point instead of 8), at the cost of fine-tuning.",
             search=_tries(("size", 7), ("latency", 5)),
             advice={  # what the wizard says of it at leaves of its tree (optlib.guide.wizard)
                 "int8_integer": Advice(
                     "follow-up", "If int8 loses too much accuracy, quantization-aware training recovers most of it, "
                     "but it needs labelled training data, which you do not have yet.", _GUIDE),
                 "int8_int16x8_integer": Advice(
                     "alternative", "Quantization-aware training can win back int8 accuracy, but it needs labelled "
                     "training data, which you do not have yet.", _GUIDE),
                 "int8_qat_cpu": Advice(
                     "follow-up", "If int8 loses more than you can afford, quantization-aware training on your "
                     "labelled data is the better option.", _GUIDE),
                 "int8_qat_integer": Advice(
                     "follow-up", "When accuracy targets are not met or accelerator support matters, "
                     "quantization-aware training on your labelled data is the better option.", _GUIDE),
                 "int8_integer_qat_optional": Advice(
                     "alternative", "Quantization-aware training loses less accuracy, if the fine-tuning is worth it "
                     "to you.", _GUIDE),
                 "int8_qat_int16x8_integer": Advice(
                     "follow-up", "Quantization-aware training on your labelled data keeps the model in int8 while "
                     "it learns to cope with quantized activations.", _GUIDE),
             }),
    _trained("prune", "training-time", "Magnitude pruning",
             "Zero out the smallest weights during a short fine-tune: same file size and speed, much smaller when compressed.",
             ("prune",), (SPARSITY, PTQ_AFTER_PRUNING) + REPRESENTATIVE_PARAMS, color="#ff7f0e", recipe={},
             tradeoff="A smaller gzipped download; the same file size and latency; needs fine-tuning.",
             advice={  # what the wizard says of it at leaves of its tree (optlib.guide.wizard)
                 "int8_prune_cluster_cpu": Advice(
                     "follow-up", "Pruning before quantizing makes the model compress better, which shrinks the "
                     "download further.", _GUIDE),
                 "float16_prune_cluster_gpu": Advice(
                     "follow-up", "Pruning makes the model compress better, which shrinks the download further.",
                     _GUIDE),
             }),
    _trained("cluster", "training-time", "Weight clustering",
             "Share a few centroid values per kernel: same file size, much smaller when compressed.",
             ("cluster",), (CLUSTERS, CENTROIDS), color="#9467bd", recipe={},
             tradeoff="A smaller gzipped download; the same file size and latency; needs fine-tuning.",
             advice={  # what the wizard says of it at leaves of its tree (optlib.guide.wizard)
                 "int8_prune_cluster_cpu": Advice(
                     "follow-up", "Clustering shares weight values, so the model compresses better, like pruning.",
                     _GUIDE),
                 "float16_prune_cluster_gpu": Advice(
                     "follow-up", "Clustering shares weight values, so the model compresses better, like pruning.",
                     _GUIDE),
             }),
    _trained("prune_qat", "combination", "Pruning + sparsity-preserving QAT",
             "Prune, then quantization-aware training that keeps the zeros: int8 size and a smaller download.",
             ("prune", "quantize"), (SPARSITY,), color="#8c564b", recipe=QAT_RECIPE,
             tradeoff="An int8 file that also gzips smaller; the most fine-tuning of the single-technique schemes.",
             search=_tries(("size", 8)),
             advice={  # what the wizard says of it at leaves of its tree (optlib.guide.wizard)
                 "int8_prune_cluster_qat_integer": Advice(
                     "follow-up", "Pruning and then quantization-aware training gives an integer model that also "
                     "compresses better for download.", _PTQ_ADVICE),
             }),
    _trained("cluster_qat", "combination", "Clustering + cluster-preserving QAT",
             "Cluster, then quantization-aware training that keeps the clusters.",
             ("cluster", "quantize"), (CLUSTERS, CENTROIDS), color="#e377c2", recipe=QAT_RECIPE,
             tradeoff="An int8 file that also gzips smaller; accuracy depends on the number of clusters.",
             search=_tries(("size", 9)),
             advice={  # what the wizard says of it at leaves of its tree (optlib.guide.wizard)
                 "int8_prune_cluster_qat_integer": Advice(
                     "follow-up", "Clustering and then quantization-aware training gives an integer model with few "
                     "distinct weights, which compresses well.", _GUIDE),
             }),
    _trained("prune_cluster_qat", "combination", "Pruning + clustering + QAT",
             "Prune, cluster while keeping the zeros, then QAT that preserves both: the full collaborative pipeline.",
             ("prune", "cluster", "quantize"), (SPARSITY, CLUSTERS, CENTROIDS), color="#393b79", recipe=QAT_RECIPE,
             tradeoff="The smallest download of all; the most fine-tuning, and "
                      "the accuracy losses of the three techniques add up.",
             advice={  # what the wizard says of it at leaves of its tree (optlib.guide.wizard)
                 "int8_prune_cluster_qat_integer": Advice(
                     "alternative", "All three together give the smallest download, at the price of the most "
                     "fine-tuning.", _GUIDE),
             }),
)

VARIANTS = (
    Scheme("as_given", "post-training", "The file as given",
           "A .tflite that is already quantized, measured as it is: its accuracy, size and latency beside the "
           "others (it has no float model, so no fidelity figure).", "nothing",
           "optlib.engine.schemes.post_training:build_as_given", variant_of="float32", color="#8c564b", backend="given",
           takes=("tflite-quantized",), tradeoff="What the file you brought measures on this machine."),
    Scheme("int8_selective", "post-training", "Selective int8",
           "Full integer int8 with the layers that quantize worst (and the layers reading them) kept in float.",
           "representative", "optlib.engine.schemes.selective:build_int8_selective",
           REPRESENTATIVE_PARAMS + (
               Param("worst_n", 1, "keep this many of the worst layers in float (ranked by channel error)",
                     min=1, max=1_000, label="Worst layers in float", group="Calibration"),
               Param("keep_float", "", "comma-separated layer (tensor) names to keep in float; overrides worst_n",
                     label="Layers kept in float", group="Calibration"),
           ), variant_of="int8", color="#98df8a", backend="converter",  # int8's light partner
           tradeoff="Nearly int8's size with float accuracy in the layers that quantize worst; those layers "
                    "run in float.",
           slower_because="the layers kept in float convert back and forth between int8 and float",
           slower_source="tflite_guide",
           search=_tries(("size", 3, {"worst_n": 1}), ("size", 4, {"worst_n": 2}),
                         ("latency", 2, {"worst_n": 1}), ("latency", 4, {"worst_n": 2}))),
)

# LiteRT Quantizer's schemes: each quantizes the one float32 conversion with a recipe
# (optlib.engine.schemes.lq). Variants beside the converter scheme they match, so "all" and
# the families leave them out and the default sweep keeps its time; select them by name or
# all at once with "litert-quantizer".
BLOCK_SIZE = Param("block_size", 32, "weights in each block that shares one int4 scale (smaller: more accurate, "
                   "larger file)", (32, 64, 128, 256), label="int4 block size", min=32, max=256, group="LiteRT Quantizer")
MIXED_PARAMS = (
    Param("worst_n", 1, "keep this many of the worst layers (ranked by channel error) at higher precision",
          min=1, max=1_000, label="Worst layers kept", group="LiteRT Quantizer"),
    Param("keep_layers", "", "comma-separated layer (tensor) names to keep; overrides worst_n",
          label="Layers kept", group="LiteRT Quantizer"),
    Param("keep_as", "float", "what the kept layers become: float, or int16 activations (int8 weights)",
          ("int16", "float"), label="Kept layers run as", group="LiteRT Quantizer"),
)

def _lq(name, title, summary, recipe, variant_of, extra=(), **facts):
    """A LiteRT Quantizer scheme: it quantizes the float32 conversion with ``recipe`` (calibrated if static)."""
    static = recipe["base"].startswith("static")
    return Scheme(name=name, family="post-training", title=title, summary=summary,
                  needs="representative" if static else "nothing", builder="optlib.engine.schemes.lq:build",
                  params=(REPRESENTATIVE_PARAMS if static else ()) + tuple(extra), variant_of=variant_of,
                  recipe=recipe, backend="litert-quantizer", takes=FLOAT_GRAPHS, **facts)


# effort (the order a sweep starts them in): on MobileNetV2 in the benchmark, dynamic-range and int4 models
# run LiteRT's hybrid kernels outside XNNPACK, and their evaluation took 2-4x float32's. The calibrated ones
# share one calibration (the first makes it, the others wait for it): their equal cost keeps them side by side
# in the order, so that one worker takes them in a row (unless the other worker's end of the list reaches them).
LQ_SCHEMES = (
    _lq(name="lq_int8", title="LiteRT Quantizer int8",
        summary=("int8 weights and activations by LiteRT Quantizer on the float32 file, calibrated on the same "
                 "sample as the converter's int8."),
        recipe={"base": "static_wi8_ai8"}, variant_of="int8", counterpart_of="int8",
        tradeoff=("The converter's int8 through the supported path: the float32 conversion is made once and "
                  "quantized from it, without converting again."),
        color="#238b45"),
    _lq(name="lq_int16x8", title="LiteRT Quantizer int16x8",
        summary="int8 weights with int16 activations by LiteRT Quantizer, calibrated.",
        recipe={"base": "static_wi8_ai16"}, variant_of="int16x8", counterpart_of="int16x8",
        tradeoff="Accuracy close to float at about int8's size; slow reference kernels, as with the converter.",
        color="#dbdb8d"),
    _lq(name="lq_dynamic_int8", title="LiteRT Quantizer dynamic int8",
        summary="int8 weights, activations quantized on the fly, by LiteRT Quantizer.",
        recipe={"base": "dynamic_wi8_afp32"}, variant_of="dynamic", counterpart_of="dynamic",
        tradeoff="The converter's dynamic range without a second conversion.",
        color="#9edae5", effort=3),
    _lq(name="lq_weight_int8", title="LiteRT Quantizer weight-only int8",
        summary="int8 weights turned back into float before each op: float accuracy and speed, 4x smaller.",
        recipe={"base": "weight_only_wi8_afp32"}, variant_of="dynamic",
        tradeoff="Up to 75% smaller with the accuracy of float; the latency of float.",
        color="#6baed6"),
    _lq(name="lq_weight_int4", title="LiteRT Quantizer weight-only int4",
        summary="int4 weights turned back into float before each op: up to 8x smaller than float32.",
        recipe={"base": "weight_only_wi4_afp32"}, variant_of="dynamic",
        tradeoff="The smallest download here (past int8's 4x); a larger accuracy loss than int8 weights.",
        color="#08519c", effort=4),
    _lq(name="lq_dynamic_int4", title="LiteRT Quantizer dynamic int4",
        summary="int4 weights with activations quantized on the fly.",
        recipe={"base": "dynamic_wi4_afp32"}, variant_of="dynamic",
        tradeoff="About weight-only int4's size; integer compute where the kernels support int4.",
        color="#3182bd", effort=3),
    _lq(name="lq_blockwise_int4", title="LiteRT Quantizer blockwise int4",
        summary=("int4 weights with one scale per block of weights in fully connected layers (block size is a "
                 "setting), one per channel in convolutions."),
        recipe={"base": "dynamic_wi4_afp32"}, variant_of="dynamic",
        extra=(BLOCK_SIZE,),
        tradeoff="A little larger than channelwise int4, with less accuracy loss; kernels for it are fewer.",
        color="#756bb1", effort=3),
    _lq(name="lq_int8_selective", title="LiteRT Quantizer mixed precision",
        summary=("LiteRT Quantizer int8 with the worst layers (or named ones) kept at int16 activations or in "
                 "float, by recipe."),
        recipe={"base": "static_wi8_ai8"}, variant_of="int8", counterpart_of="int8_selective",
        extra=MIXED_PARAMS,
        tradeoff="Nearly int8's size with the accuracy of the kept layers restored; those layers run slower.",
        color="#74c476"),
)


SCHEMES = {scheme.name: scheme for scheme in _ALL + VARIANTS}
SCHEMES.update((scheme.name, scheme) for scheme in LQ_SCHEMES)


def register(scheme):
    """Add a scheme to the registry (a plugin's entry point); return it.

    The CLI, the sweep, the store, the pages and the registry-generated tests
    see it at once. A plugin module named in ``$OPTLIB_PLUGINS`` (module
    names, comma-separated) is imported with the registry, in every process,
    worker processes included; it calls this function. A scheme registered
    only in this process runs only with the in-process executor.

    Raises:
        ValueError: the name is taken, or the family or needs are unknown.
    """
    if scheme.name in SCHEMES:
        raise ValueError(f"a scheme named '{scheme.name}' is already registered")
    if scheme.family not in FAMILIES or scheme.needs not in NEEDS or ":" not in scheme.builder:
        raise ValueError(f"scheme '{scheme.name}': family must be one of {FAMILIES}, needs one of "
                         f"{tuple(NEEDS)}, and builder 'module:function'")
    if scheme.backend and scheme.backend not in BACKENDS:
        raise ValueError(f"scheme '{scheme.name}': backend must be one of {', '.join(BACKENDS)}")
    for leaf, advice in scheme.advice.items():
        if not isinstance(advice, Advice) or advice.role not in ADVICE_ROLES or not advice.reason:
            raise ValueError(f"scheme '{scheme.name}': its advice at the wizard's leaf '{leaf}' must be "
                             f"Advice(role, reason, source) with a reason and a role among {', '.join(ADVICE_ROLES)}")
    if scheme.backend == "litert-quantizer" and "base" not in (scheme.recipe or {}):
        raise ValueError(f"scheme '{scheme.name}': a LiteRT Quantizer scheme names its recipe, "
                         "recipe={'base': 'static_wi8_ai8'} for instance")
    params = {p.name: p for p in MEASURE_PARAMS + scheme.params}
    for candidate in scheme.search:
        if candidate.objective not in ("size", "latency") or set(candidate.settings) - set(params):
            raise ValueError(f"scheme '{scheme.name}': a search candidate needs the objective 'size' or "
                             f"'latency' and settings among {', '.join(params)}")
        for name, value in candidate.settings.items():
            params[name].check(value)
    SCHEMES[scheme.name] = scheme
    return scheme


def unregister(name):
    """Remove a scheme added by :func:`register` (tests use it)."""
    SCHEMES.pop(name, None)


def names(variants=False):
    """Return the scheme names in registry order (with the variants too if asked)."""
    return tuple(name for name, scheme in SCHEMES.items() if variants or not scheme.variant_of)


def get(name):
    """Return the scheme called ``name``.

    Raises:
        InputError: no scheme has that name; the message lists the known ones.
    """
    try:
        return SCHEMES[name]
    except KeyError:
        raise InputError(
            f"Unknown scheme '{name}'. Known schemes: {', '.join(names(variants=True))}."
        ) from None


def refusal(name, form, untrainable=""):
    """"" when a model of ``form`` can take scheme ``name``, else why not, in words for its row.

    Args:
        form: the model's form (``ModelSource.form``, or a loaded model's ``form``).
        untrainable: why this model cannot be fine-tuned, when its form alone does not say (a Keras 3 layer
            with no Keras 2 equivalent).
    """
    from optlib.inputs.graph_models import FORMS

    entry = get(name)
    if form in entry.takes and not (untrainable and entry.family != "post-training"):
        return ""
    what = FORMS.get(form, form)
    if form == "tflite-quantized":
        return f"this model is {what}: it is measured as it is, not converted or quantized again"
    if entry.takes == ("tflite-quantized",):
        return f"only for a .tflite that is already quantized; this model is {what}"
    if entry.family != "post-training":
        return untrainable or (f"needs a Keras model to fine-tune (the Model Optimization Toolkit trains Keras "
                               f"models); this model is {what}")
    if entry.backend == "converter":
        return (f"needs a Keras model or a SavedModel (TFLiteConverter quantizes while it converts); this model "
                f"is {what}: LiteRT Quantizer's lq_ schemes quantize it")
    return f"cannot start from {what}"


def for_form(form):
    """The schemes ``all`` means for a model of ``form``: those it can take, without the variants; for a float
    ``.tflite``, whose only quantizer is LiteRT Quantizer, float32 and every lq_ scheme; for a quantized one,
    the file as given."""
    if form == "tflite-quantized":
        return tuple(s.name for s in SCHEMES.values() if form in s.takes)
    if form == "tflite":
        return tuple(s.name for s in SCHEMES.values() if form in s.takes and s.backend in ("converter",
                                                                                            "litert-quantizer"))
    return tuple(n for n in names() if form in SCHEMES[n].takes)


def list_schemes(pattern="*", family=None, variants=False, backend=None, technique=None, table=None,
                 advised_for=None):
    """Return the registered schemes that fit every filter given, in registry order.

    Args:
        pattern: a shell-style pattern on the name (``"lq_*"``).
        family: one of FAMILIES.
        variants: include the variants (``variant_of`` set: LiteRT Quantizer's schemes among them).
        backend: a key of BACKENDS ("converter", "litert-quantizer", "given").
        technique: a fine-tuning technique the scheme applies ("prune", "cluster", "quantize", ...).
        table: a reproduced table the scheme is a column of ("table1", "table2").
        advised_for: a leaf of the wizard's tree its ``advice`` names ("int8_cpu"; see :class:`Advice`).

    Returns:
        A list of :class:`Scheme` entries.

        >>> [s.name for s in list_schemes(technique="prune", variants=True)]
        ['prune', 'prune_qat', 'prune_cluster_qat']
    """
    return [s for s in SCHEMES.values() if fnmatch.fnmatch(s.name, pattern)
            and (family is None or s.family == family) and (variants or not s.variant_of)
            and (backend is None or s.backend == backend) and (technique is None or technique in s.techniques)
            and (table is None or table in s.tables) and (advised_for is None or advised_for in s.advice)]


def known(name):
    """Whether a scheme called ``name`` is registered (a stored row may name one that no longer is)."""
    return name in SCHEMES


def find(name):
    """The scheme called ``name``, or None when none is registered (unlike :func:`get`, which raises)."""
    return SCHEMES.get(name)


def counterparts():
    """{converter scheme: LiteRT Quantizer scheme} for every pair that makes the same quantization, in registry
    order; read from the LiteRT Quantizer entries' ``counterpart_of``.

        >>> counterparts()["int8"]
        'lq_int8'
    """
    pairs = {s.counterpart_of: s.name for s in SCHEMES.values() if s.backend == "litert-quantizer" and s.counterpart_of}
    return {name: pairs[name] for name in SCHEMES if name in pairs}


def counterpart(name):
    """The other backend's scheme that makes the same quantization as ``name`` (either way), or None."""
    pairs = counterparts()
    return pairs.get(name) or next((converter for converter, lq in pairs.items() if lq == name), None)


def select(text, form="keras"):
    """Parse a selection such as ``"all"``, ``"int8,qat"``, ``"post-training"`` or a backend (``"litert-quantizer"``).

    ``all`` and the families leave out the variants (LiteRT Quantizer's schemes among them), which run
    only when named or selected by their backend; for a model of another ``form`` than Keras they mean
    what it can take (:func:`for_form`). A scheme named by itself is kept: its row says why it cannot run.

    Raises:
        InputError: an unknown name; the message lists the known ones.
    """
    chosen = []
    check_plugins()
    for part in [p.strip() for p in str(text).split(",") if p.strip()]:
        if part == "all":
            chosen += for_form(form)
        elif part in FAMILIES:
            chosen += [n for n in for_form(form) if SCHEMES[n].family == part]
        elif part in BACKENDS:
            chosen += [s.name for s in SCHEMES.values() if s.backend == part]
        else:
            chosen.append(get(part).name)
    if not chosen:
        raise InputError(f"No scheme selected. Known schemes: {', '.join(SCHEMES)} (or 'all', a family or a "
                         f"backend: {', '.join(BACKENDS)}).")
    return list(dict.fromkeys(chosen))


def params_of(name):
    """Return every setting the scheme accepts, measurement settings included."""
    return MEASURE_PARAMS + get(name).params


def settings_for(name, overrides=None):
    """Return the effective settings of a scheme: defaults, then overrides.

    ``overrides`` maps a setting name to a value (or its text). A key may be
    scoped to a scheme as ``"prune.sparsity"``; an unscoped key applies to
    every scheme that has that setting.

    Raises:
        InputError: a value does not parse or a scoped key names an unknown setting.
    """
    params = {p.name: p for p in params_of(name)}
    settings = {p.name: p.default for p in params.values()}
    for key, value in (overrides or {}).items():
        scope, _, pname = key.rpartition(".")
        if scope and scope != name:
            continue
        if pname not in params:
            if scope:
                raise InputError(
                    f"Scheme '{name}' has no setting '{pname}'. Its settings: {', '.join(params)}."
                )
            continue
        settings[pname] = params[pname].parse(value) if isinstance(value, str) else params[pname].check(value)
    return settings


def check_overrides(overrides):
    """Raise InputError for a setting no scheme knows (likely a typo) or a value that does not parse.

    An unscoped key may be any scheme's setting (it applies where it fits); a
    scoped key ``scheme.setting`` must be a setting of that scheme.
    """
    for key, value in (overrides or {}).items():
        scope, _, pname = key.rpartition(".")
        params = {p.name: p for name in ([scope] if scope else SCHEMES) for p in params_of(name)}
        if pname not in params:
            where = f"Scheme '{scope}' has no" if scope else "No scheme has a"
            raise InputError(f"{where} setting '{pname}'. Settings: {', '.join(sorted(params))}.")
        params[pname].parse(value) if isinstance(value, str) else params[pname].check(value)


PLUGIN_PROBLEMS = []  # plugins named in $OPTLIB_PLUGINS that could not be loaded, and why


def check_plugins():
    """Raise InputError if a plugin named in ``$OPTLIB_PLUGINS`` could not be loaded (its schemes are missing)."""
    if PLUGIN_PROBLEMS:
        raise InputError(" ".join(PLUGIN_PROBLEMS) + " Fix the plugin or take it out of OPTLIB_PLUGINS.")


def _load_plugins():
    for module in filter(None, (m.strip() for m in os.environ.get("OPTLIB_PLUGINS", "").split(","))):
        try:
            importlib.import_module(module)
        except Exception as problem:  # any error in someone else's module: reported, never a traceback
            PLUGIN_PROBLEMS.append(f"The scheme plugin '{module}' (OPTLIB_PLUGINS) could not be loaded: "
                                   f"{type(problem).__name__}: {problem}.")


_load_plugins()
