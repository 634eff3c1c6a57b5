"""The scheme-choosing wizard: a decision tree kept as data.

The tree follows the documents in `SOURCES`: the technique table of the
TensorFlow Lite guide "Model optimization" (what data each technique needs,
how much it shrinks the model, what it costs in accuracy, which hardware runs
it), its advice on int16 activations, its development workflow (start with
post-training quantization, move to quantization-aware training when accuracy
or an accelerator demands it, add pruning or clustering for download size),
and the post-training method advice of ApX Machine Learning's overview of
model optimization techniques in TensorFlow.

The questions, the tree and the sources are here; which schemes a leaf
recommends, and what it says of each, is in the schemes' registry entries
(their ``advice``), so adding a scheme to a leaf is one edit in its entry.
Everything is plain data and standard-library code, so a page can draw the
tree and tests can walk every leaf.

    >>> from optlib.guide import wizard
    >>> rec = wizard.recommend(
    ...     {"data": "representative", "hardware": "edgetpu", "priority": "accuracy"})
    >>> wizard.schemes(rec)
    ['int8', 'qat']
    >>> rec.items[0].role
    'primary'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from optlib.engine import schemes as registry  # each scheme's trade-off and advice live in its entry

# The documents the advice comes from, as each item's ``source`` names them.
GUIDE = "tflite_guide"
TALE = "tale_of_quantization"
TOOLKIT_BLOG = "toolkit_announcement"
PTQ_ADVICE = "apx_optimization_techniques"

# Source id -> (title, web address or None), the way a reader finds the
# document. Two of them carry no address of their own; the ApX page carries
# no title either, so its title says what and whose it is.
SOURCES: dict[str, tuple[str, str | None]] = {
    GUIDE: ("TensorFlow Lite guide: Model optimization",
            "https://www.tensorflow.org/lite/performance/model_optimization"),
    TALE: ("A Tale of Model Quantization in TF Lite", None),
    TOOLKIT_BLOG: ("Introducing the Model Optimization Toolkit for TensorFlow",
                   "https://blog.tensorflow.org/2018/09/introducing-model-optimization-toolkit.html"),
    PTQ_ADVICE: ("ApX Machine Learning: model optimization techniques in TensorFlow", None),
}

ROLES = registry.ADVICE_ROLES  # ("primary", "follow-up", "alternative"), in the order a leaf lists them


@dataclass(frozen=True)
class Question:
    """One question of the wizard.

    Attributes:
        id: key of the answer in the dict given to `recommend`.
        text: the question as shown to a person.
        help: why it matters, in a sentence or two.
        options: (value, label) pairs; values are what `recommend` accepts.
        default: value used when the answer is left out, or None when the
            question must be answered.
    """

    id: str
    text: str
    help: str
    options: tuple[tuple[str, str], ...]
    default: str | None = None

    @property
    def values(self) -> tuple[str, ...]:
        """The accepted answer values, in order."""
        return tuple(value for value, _ in self.options)


@dataclass(frozen=True)
class Item:
    """One recommended scheme.

    Attributes:
        scheme: a stable scheme name (see `optlib.engine.schemes`).
        role: "primary" (try first), "follow-up" (try next if the primary
            falls short) or "alternative" (a different trade-off).
        reason: why, in one or two plain sentences.
        tradeoff: what to expect in size, speed and accuracy.
        source: id of the document the advice comes from (a key of `SOURCES`).
    """

    scheme: str
    role: str
    reason: str
    tradeoff: str
    source: str


@dataclass(frozen=True)
class Recommendation:
    """What the wizard recommends for one set of answers.

    Attributes:
        items: ranked recommendations, primary first.
        warnings: choices in this situation that are known to disappoint.
        path: (decision node id, answer) pairs from the root to the leaf.
        leaf: id of the leaf reached.
    """

    items: tuple[Item, ...]
    warnings: tuple[str, ...]
    path: tuple[tuple[str, str], ...]
    leaf: str
    settings: Mapping[str, object] = field(default_factory=dict)  # what the target needs, e.g. int8_io


QUESTIONS: tuple[Question, ...] = (
    Question(
        id="data",
        text="What data do you have besides the model?",
        help=(
            "Float16 and dynamic range quantization need no data. Full integer "
            "quantization needs an unlabelled representative sample (about "
            "100-500 typical inputs). Quantization-aware training, pruning and "
            "clustering fine-tune the model, so they need labelled training data."
        ),
        options=(
            ("none", "None, only the trained model"),
            ("representative", "Unlabelled representative samples"),
            ("labelled", "Labelled training data"),
        ),
    ),
    Question(
        id="hardware",
        text="Where will the model run?",
        help=(
            "Float16 runs on CPU and GPU, dynamic range on CPU and Android GPU. "
            "Edge TPU, Hexagon DSP and microcontrollers run integer-only models, "
            "which full integer quantization and quantization-aware training make."
        ),
        options=(
            ("cpu", "CPU"),
            ("gpu", "GPU (GPU delegate)"),
            ("android_gpu", "Android GPU"),
            ("edgetpu", "Edge TPU"),
            ("hexagon", "Hexagon DSP"),
            ("microcontroller", "Microcontroller (integer-only)"),
        ),
    ),
    Question(
        id="priority",
        text="What matters most?",
        help=(
            "Quantization shrinks the file, the memory use and usually the "
            "latency. Pruning and clustering shrink only the compressed "
            "(gzipped) download."
        ),
        options=(
            ("size", "Model size (file and memory)"),
            ("latency", "Latency (speed of one inference)"),
            ("accuracy", "Accuracy"),
            ("download_size", "Download size (compressed)"),
        ),
    ),
    Question(
        id="accuracy_loss",
        text="How much accuracy can you afford to lose?",
        help=(
            "In the guide's Table 1, post-training quantization cost MobileNetV2 "
            "8 points of top-1 accuracy; quantization-aware training cost 1 point."
        ),
        options=(
            ("minimal", "Less than 0.5 point"),
            ("about_one", "About 1 point"),
            ("few", "A few points"),
        ),
        default="about_one",
    ),
    Question(
        id="activation_sensitive",
        text="Is the model sensitive to quantized activations (speech, language)?",
        help=(
            "In the guide's Table 2, int8 activations raised DeepSpeech's "
            "character error rate from 6.13% to 43.67%; int16 activations kept it "
            "at 6.52%. Most image classifiers are not sensitive."
        ),
        options=(
            ("no", "No (for example an image classifier)"),
            ("yes", "Yes (for example speech or language)"),
        ),
        default="no",
    ),
)

_QUESTIONS = {q.id: q for q in QUESTIONS}

_INTEGER_ONLY = ("edgetpu", "hexagon", "microcontroller")
# Settings a target needs, whatever the schemes: integer-only hardware takes integer input and output.
TARGET_SETTINGS = {hardware: {"int8_io": True} for hardware in _INTEGER_ONLY}
_SMALLER = ("size", "latency")

ROOT = "data"

# Decision nodes: node id -> (question id, {answer value: child node id}).
# A child is another decision node or a leaf (see `_items`). Every node lists
# every value of its question; tests check that.
_DECISIONS: dict[str, tuple[str, dict[str, str]]] = {
    "data": ("data", {
        "none": "no_data.hardware",
        "representative": "samples.hardware",
        "labelled": "labels.hardware",
    }),
    # No data: only float16 and dynamic range are possible.
    "no_data.hardware": ("hardware", {
        "cpu": "no_data.cpu.priority",
        "gpu": "float16_gpu",
        "android_gpu": "float16_dynamic_android_gpu",
        **dict.fromkeys(_INTEGER_ONLY, "integer_needs_samples"),
    }),
    "no_data.cpu.priority": ("priority", {
        "size": "dynamic_cpu",
        "latency": "dynamic_cpu",
        "accuracy": "float16_cpu",
        "download_size": "dynamic_cpu",
    }),
    # Unlabelled samples: full integer (int8, int16x8) becomes possible.
    "samples.hardware": ("hardware", {
        "cpu": "samples.cpu.priority",
        "gpu": "float16_gpu",
        "android_gpu": "float16_int8_android_gpu",
        **dict.fromkeys(_INTEGER_ONLY, "samples.integer.sensitive"),
    }),
    "samples.cpu.priority": ("priority", {
        "size": "samples.cpu.sensitive",
        "latency": "samples.cpu.sensitive",
        "accuracy": "float16_int8_cpu",
        "download_size": "samples.cpu.sensitive",
    }),
    "samples.cpu.sensitive": ("activation_sensitive", {
        "no": "int8_cpu",
        "yes": "int16x8_cpu",
    }),
    "samples.integer.sensitive": ("activation_sensitive", {
        "no": "int8_integer",
        "yes": "int8_int16x8_integer",
    }),
    # Labelled data: quantization-aware training, pruning and clustering too.
    "labels.hardware": ("hardware", {
        "cpu": "labels.cpu.priority",
        "gpu": "labels.gpu.priority",
        "android_gpu": "labels.android_gpu.priority",
        **dict.fromkeys(_INTEGER_ONLY, "labels.integer.priority"),
    }),
    "labels.gpu.priority": ("priority", {
        **dict.fromkeys(_SMALLER + ("accuracy",), "float16_gpu"),
        "download_size": "float16_prune_cluster_gpu",
    }),
    "labels.android_gpu.priority": ("priority", {
        **dict.fromkeys(_SMALLER + ("accuracy",), "float16_int8_android_gpu"),
        "download_size": "float16_prune_cluster_gpu",
    }),
    "labels.cpu.priority": ("priority", {
        **dict.fromkeys(_SMALLER, "labels.cpu.sensitive"),
        "accuracy": "float16_int8_cpu",
        "download_size": "int8_prune_cluster_cpu",
    }),
    "labels.cpu.sensitive": ("activation_sensitive", {
        "no": "labels.cpu.accuracy_loss",
        "yes": "int16x8_cpu",
    }),
    "labels.cpu.accuracy_loss": ("accuracy_loss", {
        "minimal": "int8_qat_cpu",
        "about_one": "int8_qat_cpu",
        "few": "int8_cpu",
    }),
    "labels.integer.priority": ("priority", {
        **dict.fromkeys(_SMALLER + ("accuracy",), "labels.integer.sensitive"),
        "download_size": "int8_prune_cluster_qat_integer",
    }),
    "labels.integer.sensitive": ("activation_sensitive", {
        "no": "labels.integer.accuracy_loss",
        "yes": "int8_qat_int16x8_integer",
    }),
    "labels.integer.accuracy_loss": ("accuracy_loss", {
        "minimal": "int8_qat_integer",
        "about_one": "int8_qat_integer",
        "few": "int8_integer_qat_optional",
    }),
}

# A leaf is a child above that is not a decision node; leaves are named after what they recommend, and
# several paths may end in the same leaf. What a leaf recommends lives in the registry: each scheme's entry
# says, in its ``advice``, at which leaves the wizard recommends it, in which role and why (`_items`).


def _items(leaf: str) -> tuple[Item, ...]:
    """The schemes the registry advises at a leaf: primary first, then follow-ups, then alternatives (ROLES),
    in registry order within a role."""
    advised = registry.list_schemes(advised_for=leaf, variants=True)
    ranked = sorted(advised, key=lambda scheme: ROLES.index(scheme.advice[leaf].role))  # stable: registry order
    return tuple(Item(scheme.name, scheme.advice[leaf].role, scheme.advice[leaf].reason, scheme.tradeoff,
                      scheme.advice[leaf].source) for scheme in ranked)


@dataclass(frozen=True)
class _Rule:
    """A warning shown when a scheme is recommended and/or answers match."""

    text: str
    schemes: tuple[str, ...] = ()  # fires only if one of these is recommended
    when: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


# Every scheme that prunes or clusters, from the registry's entries (a plugin's technique combined with
# pruning is one of them too).
_PRUNE_OR_CLUSTER = tuple(s.name for s in registry.list_schemes(variants=True)
                          if {"prune", "cluster"} & set(s.techniques))

_WARNINGS: tuple[_Rule, ...] = (
    _Rule(
        "Integer-only hardware (Edge TPU, Hexagon DSP, microcontroller) needs at "
        "least an unlabelled representative sample: nothing that can be made "
        "without data runs on it. Gather about 100-500 typical inputs.",
        when={"data": ("none",), "hardware": _INTEGER_ONLY},
    ),
    _Rule(
        "With no data at all, int8, int16x8 and quantization-aware training are "
        "ruled out, and so are pruning and clustering.",
        when={"data": ("none",)},
    ),
    _Rule(
        "Pruning and clustering fine-tune the model, so they need labelled "
        "training data.",
        when={"priority": ("download_size",), "data": ("none", "representative")},
    ),
    _Rule(
        "Dynamic range quantization can be slower than float32 on x86 CPUs "
        "(MobileNetV2 on one thread: 14.6 ms against 8.3 ms); its speed-ups are "
        "on ARM CPUs. Measure on your target.",
        schemes=("dynamic",),
    ),
    _Rule(
        "Full integer quantization calibrates activation ranges on a "
        "representative sample: use about 100-500 typical inputs, as too few or "
        "untypical ones cost accuracy.",
        schemes=("int8", "int16x8"),
    ),
    _Rule(
        "int16x8 runs on non-optimized reference kernels in TFLite, so it is "
        "slow compared with int8.",
        schemes=("int16x8",),
    ),
    _Rule(
        "The Edge TPU runs only 8-bit models; an int16x8 model will not run on "
        "the accelerator.",
        schemes=("int16x8",),
        when={"hardware": ("edgetpu",)},
    ),
    _Rule(
        "Quantization-aware training needs labelled training data.",
        schemes=("qat",),
        when={"data": ("representative",)},
    ),
    _Rule(
        "Pruning and clustering shrink only the compressed (gzipped) download: "
        "the .tflite file keeps its size and its latency.",
        schemes=_PRUNE_OR_CLUSTER,
    ),
)


def recommend(answers: Mapping[str, str]) -> Recommendation:
    """Walks the tree with the given answers and returns its recommendation.

    Only the questions on the path are needed; a question with a default may
    be left out. Every answer given is checked, even off the path.

    Args:
        answers: question id -> answer value, e.g. ``{"data": "none",
            "hardware": "cpu", "priority": "size"}``. A None value counts as
            not answered.

    Returns:
        The ranked items, the warnings that apply, the path taken and the leaf.

    Raises:
        ValueError: an unknown question, an unknown answer, or a missing answer
            to a question on the path without a default. The message lists the
            accepted values.
    """
    given = _check(answers)
    node, path = ROOT, []
    while node in _DECISIONS:
        question_id, children = _DECISIONS[node]
        answer = given.get(question_id, _QUESTIONS[question_id].default)
        if answer is None:
            raise ValueError(
                f"Missing answer to '{question_id}'; accepted values: "
                f"{', '.join(_QUESTIONS[question_id].values)}."
            )
        path.append((node, answer))
        node = children[answer]
    items = _items(node)
    used = {**given, **{_DECISIONS[n][0]: a for n, a in path}}
    recommended = {item.scheme for item in items}
    warnings = tuple(
        rule.text
        for rule in _WARNINGS
        if (not rule.schemes or recommended.intersection(rule.schemes))
        and all(used.get(q) in values for q, values in rule.when.items())
    )
    return Recommendation(items, warnings, tuple(path), node, dict(TARGET_SETTINGS.get(used.get("hardware"), {})))


def next_question(answers: Mapping[str, str]) -> Question | None:
    """Returns the next question on the path that is not answered yet.

    Questions with a default are still asked, so a step-by-step page can offer
    them; `recommend` would use the default.

    Args:
        answers: the answers so far (question id -> value).

    Returns:
        The question to ask next, or None when the path reaches a leaf.

    Raises:
        ValueError: an unknown question or answer, as in `recommend`.
    """
    given = _check(answers)
    node = ROOT
    while node in _DECISIONS:
        question_id, children = _DECISIONS[node]
        if question_id not in given:
            return _QUESTIONS[question_id]
        node = children[given[question_id]]
    return None


def schemes(rec: Recommendation) -> list[str]:
    """Returns the recommended scheme names, in rank order."""
    return [item.scheme for item in rec.items]


def cite(source: str) -> str:
    """Returns a source as plain text: its title, and its web address when it has one.

    Args:
        source: a key of `SOURCES`, such as an `Item`'s ``source``.

    Returns:
        ``"Title (https://...)"``, or just ``"Title"`` for a source without an
        address.
    """
    title, url = SOURCES[source]
    return f"{title} ({url})" if url else title


def leaves() -> tuple[str, ...]:
    """Returns the id of every leaf (outcome) of the tree, in drawing order."""
    return tuple(node["id"] for node in as_graph()["nodes"] if node["kind"] == "leaf")


def as_graph() -> dict[str, list[dict]]:
    """Returns the tree as plain nodes and edges, for drawing.

    Nodes and edges come in breadth-first order from the root. A leaf reached
    from several places appears once, so the drawing is a graph, not a strict
    tree. To highlight a `Recommendation`, mark the edge whose ``source`` is a
    node of ``rec.path`` and whose ``answers`` hold its answer, and the node
    ``rec.leaf``.

    Returns:
        ``{"nodes": [...], "edges": [...]}``. A node is ``{"id", "kind":
        "question" | "leaf", "label"}``; question nodes add ``"question"`` (the
        question id) and leaf nodes add ``"schemes"`` (ranked names). An edge
        is ``{"source", "target", "answers": [values], "label"}``.
    """
    nodes, edges, seen, queue = [], [], {ROOT}, [ROOT]
    for node in queue:  # the queue grows while it is read: breadth first
        if node not in _DECISIONS:
            names = [item.scheme for item in _items(node)]
            nodes.append({"id": node, "kind": "leaf", "label": ", ".join(names),
                          "schemes": names})
            continue
        question_id, children = _DECISIONS[node]
        question = _QUESTIONS[question_id]
        nodes.append({"id": node, "kind": "question", "label": question.text,
                      "question": question_id})
        targets: dict[str, list[str]] = {}
        for value in question.values:
            targets.setdefault(children[value], []).append(value)
        labels = dict(question.options)
        for target, values in targets.items():
            edges.append({"source": node, "target": target, "answers": values,
                          "label": " / ".join(labels[v] for v in values)})
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return {"nodes": nodes, "edges": edges}


# Short names of the questions and colours for the drawing (`to_dot`).
_SHORT = {
    "data": "Data you have",
    "hardware": "Runs on",
    "priority": "Matters most",
    "accuracy_loss": "Accuracy to spare",
    "activation_sensitive": "Sensitive activations",
}
_ACCENT, _ACCENT_TEXT, _ACCENT_FILL = "#ff6f00", "#b34d00", "#fff3e0"
_MUTED, _MUTED_TEXT = "#c4c8ce", "#5f6670"


_SHORT_ANSWERS = {"none": "Only the model", "representative": "Unlabelled samples", "labelled": "Labelled data",
                  "minimal": "< 0.5 point", "about_one": "About 1 point", "few": "A few points"}


def _short_answer(value: str, label: str) -> str:
    """'Model size (file and memory)' -> 'Model size'; 'None, only the trained model' -> 'Only the model' (a
    lone 'None' between two arrows reads as a missing value)."""
    return _SHORT_ANSWERS.get(value) or label.split(" (")[0].split(",")[0]


def _quote(text: str) -> str:
    """A DOT string: quotes and backslashes escaped, line breaks as DOT's centred ``\\n``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def to_dot(answers: Mapping[str, str] | None = None, path_only: bool = False, root: str = ROOT) -> str:
    """Returns the whole tree as Graphviz DOT source, the path of the answers highlighted.

    With ``path_only`` it draws the path and, beside each step, the branches the
    answers did not take as one box each, not expanded: a drawing a fraction of the
    whole tree's size, legible at full width on a projector.

    The path goes as far as the answers take it: a question left out uses its
    default, and the path stops at the first question that must be answered
    and is not. With every needed answer it ends in the leaf `recommend`
    reaches, and its nodes and edges are those of ``recommend(answers).path``.

    Unlike `as_graph`, a leaf reached from several questions is drawn once
    under each of them (DOT node id ``"<question node>><leaf>"``), so the
    drawing is a strict tree whose edges never cross.

    Args:
        answers: question id -> answer value (None counts as not answered).
        path_only: draw the path and fold the branches not taken.
        root: draw only the part of the tree below this question node (see `branches`), top to bottom.

    Returns:
        DOT source, left to right (top to bottom for the path alone or a part): questions as rounded boxes, leaves as
        filled boxes naming their ranked schemes, edges labelled with the
        answers. For any Graphviz renderer, such as ``st.graphviz_chart``.

    Raises:
        ValueError: an unknown question or answer, as in `recommend`.
    """
    given = _check(answers or {})
    taken, node = set(), ROOT
    while node in _DECISIONS:
        question_id, children = _DECISIONS[node]
        answer = given.get(question_id, _QUESTIONS[question_id].default)
        if answer is None:
            break
        taken.add((node, children[answer]))
        node = children[answer]
    graph = as_graph()
    nodes = {item["id"]: item for item in graph["nodes"]}
    edges: dict[str, list[dict]] = {}
    for edge in graph["edges"]:
        edges.setdefault(edge["source"], []).append(edge)
    options = {q.id: dict(q.options) for q in QUESTIONS}
    lines = [
        "digraph wizard {",
        # The path alone reads top to bottom: its width is one step's branches, not the tree's depth.
        f'  graph [rankdir={"TB" if path_only or root != ROOT else "LR"}, bgcolor="transparent", nodesep=0.08, ranksep=0.12];',
        f'  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=14, '
        f'color="{_MUTED}", fillcolor="#ffffff", fontcolor="{_MUTED_TEXT}", '
        f'margin="0.1,0.04", height=0.3];',
        f'  edge [color="{_MUTED}", fontcolor="{_MUTED_TEXT}", fontname="Helvetica", '
        f"fontsize=12, arrowsize=0.6];",
    ]

    def draw(node_id: str, dot_id: str, reached: bool, folded: bool = False) -> None:
        item = nodes[node_id]
        if folded:  # a branch the answers did not take: one box saying what lies behind it
            label = (f"{_SHORT[item['question']]} …" if item["kind"] == "question"
                     else "\n".join(" · ".join(item["schemes"][i:i + 2]) for i in range(0, len(item["schemes"]), 2)))
            lines.append(f"  {_quote(dot_id)} [label={_quote(label)}, style=\"rounded,dashed\"];")
            return
        if item["kind"] == "question":
            label, look = _SHORT[item["question"]], ""
            if reached:
                look = (f', color="{_ACCENT}", fillcolor="{_ACCENT_FILL}", '
                        f'fontcolor="#1f2328", penwidth=2')
        else:
            names = item["schemes"]  # two to a line keeps the widest leaf narrow
            label = "\n".join(" · ".join(names[i:i + 2]) for i in range(0, len(names), 2))
            look = ', style="filled", fillcolor="#f3f4f6"'
            if reached:
                look = (f', style="filled", color="{_ACCENT}", fillcolor="{_ACCENT}", '
                        f'fontcolor="#ffffff", penwidth=2')
        lines.append(f"  {_quote(dot_id)} [label={_quote(label)}{look}];")
        for edge in edges.get(node_id, ()):
            target = edge["target"]
            child = target if target in _DECISIONS else f"{node_id}>{target}"
            hit = (node_id, target) in taken
            label = "\n".join(_short_answer(value, options[item["question"]][value])
                              for value in edge["answers"])
            look = f', color="{_ACCENT}", fontcolor="{_ACCENT_TEXT}", penwidth=2.5' if hit else ""
            lines.append(f"  {_quote(dot_id)} -> {_quote(child)} [label={_quote(label)}{look}];")
            draw(target, child, hit, folded=path_only and not hit)

    draw(root, root, root == ROOT or any(node == root for _, node in taken))
    lines.append("}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Branch:
    """A part of the tree below the first two answers (what data, where it runs), drawn on its own.

    Attributes:
        data: the answer about data that leads here (its short label: 'Labelled data').
        hardware: the answers about hardware that lead here ('Edge TPU, Hexagon DSP, Microcontroller').
        node: the node these answers reach: a question (draw it with ``to_dot(answers, root=node)``) or a leaf.
        schemes: the leaf's ranked schemes, or () for a question.
        taken: True when the answers given so far lead here.
    """

    data: str
    hardware: str
    node: str
    schemes: tuple[str, ...]
    taken: bool


def branches(answers: Mapping[str, str] | None = None) -> list[Branch]:
    """The whole tree in parts small enough to read at 1024 px: one per answer about data and about hardware.

    The tree drawn whole is about 1,200 px wide: a window of 1024 px shrinks its text to about 6 px. Below its
    first two questions each part is a few boxes wide, and a leaf reached directly needs no drawing.
    """
    given = _check(answers or {})
    graph = as_graph()
    nodes = {item["id"]: item for item in graph["nodes"]}
    out = []
    for first in (edge for edge in graph["edges"] if edge["source"] == ROOT):
        data_label = " / ".join(_short_answer(v, dict(_QUESTIONS[ROOT].options)[v]) for v in first["answers"])
        hardware_question = _DECISIONS[first["target"]][0]
        labels = dict(_QUESTIONS[hardware_question].options)
        for second in (edge for edge in graph["edges"] if edge["source"] == first["target"]):
            taken = (given.get(ROOT) in first["answers"] and given.get(hardware_question) in second["answers"])
            out.append(Branch(data_label, ", ".join(_short_answer(v, labels[v]) for v in second["answers"]),
                              second["target"], tuple(nodes[second["target"]].get("schemes", ())), taken))
    return out


def _check(answers: Mapping[str, str]) -> dict[str, str]:
    """Validates answers and drops the ones given as None."""
    given = {}
    for question_id, value in answers.items():
        if question_id not in _QUESTIONS:
            raise ValueError(
                f"Unknown question '{question_id}'; accepted questions: "
                f"{', '.join(_QUESTIONS)}."
            )
        if value is None:
            continue
        accepted = _QUESTIONS[question_id].values
        if value not in accepted:
            raise ValueError(
                f"Unknown answer {value!r} to '{question_id}'; accepted values: "
                f"{', '.join(accepted)}."
            )
        given[question_id] = value
    return given
