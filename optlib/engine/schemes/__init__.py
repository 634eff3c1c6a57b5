"""The one registry of optimization schemes.

The CLI, the store, the sweep, the pages and the tests all read this
registry. A scheme is data: its name, family, what it needs, its settings
with defaults, and the dotted path of the function that builds it (imported
only when the scheme runs, so this module stays light).

    >>> from optlib.engine import schemes
    >>> schemes.names()[:3]
    ('float32', 'float16', 'dynamic')
    >>> schemes.get("int8").needs
    'representative'
"""

import fnmatch
import importlib
from dataclasses import dataclass, field

from optlib.errors import InputError

FAMILIES = ("post-training", "training-time", "combination")
NEEDS = {
    "nothing": "no data",
    "representative": "an unlabelled representative sample (100-500 inputs)",
    "training": "labelled training data and a short fine-tune",
}


@dataclass(frozen=True)
class Param:
    """One setting of a scheme: name, default and what it means."""

    name: str
    default: object
    help: str
    choices: tuple = ()

    def parse(self, text):
        """Turn a value given as text (CLI, form) into the default's type.

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
        if self.choices and value not in self.choices:
            raise InputError(
                f"Setting '{self.name}' must be one of {', '.join(map(str, self.choices))}; got {value!r}."
            )
        return value


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

    def build_function(self):
        module, function = self.builder.split(":")
        return getattr(importlib.import_module(module), function)


# Settings every scheme of a kind shares. Measurement settings belong to all.
MEASURE_PARAMS = (
    Param("threads", 1, "interpreter threads for the latency figure (Table 1 used one big core)"),
    Param("runs", 50, "at least this many timed invokes for the latency figure (and at least 0.3 s of them)"),
    Param("warmup", 5, "at least this many untimed invokes before timing (and at least 0.1 s of them)"),
)
REPRESENTATIVE_PARAMS = (
    Param("rep_samples", 200, "inputs in the representative (calibration) sample, 100-500 is typical"),
)
TRAINING_PARAMS = (
    Param("epochs", 2, "fine-tuning epochs on the training split"),
    Param("batch_size", 32, "fine-tuning batch size"),
    Param("learning_rate", 1e-4, "fine-tuning learning rate (Adam)"),
    Param("seed", 0, "random seed, so a run can be repeated"),
    Param("train_samples", 0, "fine-tune on at most this many training samples (0: all of them)"),
)
SPARSITY = Param("sparsity", 0.5, "target share of zero weights in each prunable kernel")
CLUSTERS = Param("clusters", 16, "number of clusters (unique values) per kernel")
CENTROIDS = Param(
    "centroids", "kmeans_plus_plus", "how cluster centroids start",
    ("kmeans_plus_plus", "linear", "density_based", "random"),
)
INT8_IO = Param("int8_io", False, "integer (int8) model input and output, as integer-only hardware needs")


def _ptq(name, title, summary, needs, extra=()):
    params = (REPRESENTATIVE_PARAMS if needs == "representative" else ()) + tuple(extra)
    return Scheme(name, "post-training", title, summary, needs,
                  f"optlib.engine.schemes.post_training:build_{name}", params)


def _trained(name, family, title, summary, techniques, extra=()):
    return Scheme(name, family, title, summary, "training",
                  f"optlib.engine.schemes.training:build_{name}",
                  TRAINING_PARAMS + tuple(extra), techniques)


_ALL = (
    _ptq("float32", "Float32 baseline",
         "Plain TFLite conversion with no optimization: the baseline every other scheme is compared to.",
         "nothing"),
    _ptq("float16", "Float16 weights",
         "Weights stored as float16: about half the size, insignificant accuracy loss; runs on CPU and GPU.",
         "nothing"),
    _ptq("dynamic", "Dynamic range",
         "Weights stored as int8, activations quantized on the fly: up to 75% smaller; can be slower than float on x86 CPUs.",
         "nothing"),
    _ptq("int8", "Full integer (int8)",
         "Weights and activations int8, calibrated on a representative sample: up to 75% smaller and fast on integer hardware.",
         "representative", (INT8_IO,)),
    _ptq("int16x8", "int16 activations, int8 weights",
         "Full integer with int16 activations: better accuracy than int8 for activation-sensitive models; reference kernels are slow.",
         "representative"),
    _trained("qat", "training-time", "Quantization-aware training",
             "Fine-tune with simulated int8 quantization, then convert to int8: the smallest accuracy loss of the int8 options.",
             ("quantize",), REPRESENTATIVE_PARAMS),
    _trained("prune", "training-time", "Magnitude pruning",
             "Zero out the smallest weights during a short fine-tune: same file size and speed, much smaller when compressed.",
             ("prune",), (SPARSITY, Param("ptq", "none", "post-training quantization after pruning", ("none", "int8")))
             + REPRESENTATIVE_PARAMS),
    _trained("cluster", "training-time", "Weight clustering",
             "Share a few centroid values per kernel: same file size, much smaller when compressed.",
             ("cluster",), (CLUSTERS, CENTROIDS)),
    _trained("prune_qat", "combination", "Pruning + sparsity-preserving QAT",
             "Prune, then quantization-aware training that keeps the zeros: int8 size and a smaller download.",
             ("prune", "quantize"), (SPARSITY,)),
    _trained("cluster_qat", "combination", "Clustering + cluster-preserving QAT",
             "Cluster, then quantization-aware training that keeps the clusters.",
             ("cluster", "quantize"), (CLUSTERS, CENTROIDS)),
    _trained("prune_cluster_qat", "combination", "Pruning + clustering + QAT",
             "Prune, cluster while keeping the zeros, then QAT that preserves both: the full collaborative pipeline.",
             ("prune", "cluster", "quantize"), (SPARSITY, CLUSTERS, CENTROIDS)),
)

VARIANTS = (
    Scheme("int8_selective", "post-training", "Selective int8",
           "Full integer int8 with the layers that quantize worst (and the layers reading them) kept in float.",
           "representative", "optlib.engine.schemes.selective:build_int8_selective",
           REPRESENTATIVE_PARAMS + (
               Param("worst_n", 1, "keep this many of the worst layers in float (ranked by channel error)"),
               Param("keep_float", "", "comma-separated layer (tensor) names to keep in float; overrides worst_n"),
           ), variant_of="int8"),
)

SCHEMES = {scheme.name: scheme for scheme in _ALL + VARIANTS}


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


def list_schemes(pattern="*", family=None, variants=False):
    """Return the schemes whose name matches a shell-style pattern (and family)."""
    return [s for s in SCHEMES.values() if fnmatch.fnmatch(s.name, pattern)
            and (family is None or s.family == family) and (variants or not s.variant_of)]


def select(text):
    """Parse a selection such as ``"all"``, ``"int8,qat"`` or ``"post-training"``.

    Raises:
        InputError: an unknown name; the message lists the known ones.
    """
    chosen = []
    for part in [p.strip() for p in str(text).split(",") if p.strip()]:
        if part == "all":
            chosen += names()
        elif part in FAMILIES:
            chosen += [s.name for s in list_schemes(family=part)]
        else:
            chosen.append(get(part).name)
    if not chosen:
        raise InputError(f"No scheme selected. Known schemes: {', '.join(SCHEMES)} (or 'all').")
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
        settings[pname] = params[pname].parse(value) if isinstance(value, str) else value
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
        if isinstance(value, str):
            params[pname].parse(value)
