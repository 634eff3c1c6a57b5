"""The wizard's decision tree: every leaf, its warnings, its errors and its graph."""

import ast
import itertools
import re
import sys
from pathlib import Path

import pytest

from optlib.guide import wizard

WIZARD_FILE = Path(wizard.__file__)

# The stable scheme names from DESIGN.md, written out here on purpose.
SCHEME_NAMES = (
    "float32", "float16", "dynamic", "int8", "int16x8", "qat",
    "prune", "cluster", "prune_qat", "cluster_qat", "prune_cluster_qat",
)
INTEGER_ONLY = ("edgetpu", "hexagon", "microcontroller")


def ask(data, hardware, priority, accuracy_loss=None, activation_sensitive=None):
    """Builds an answers dict; refinements left as None are not given."""
    answers = {"data": data, "hardware": hardware, "priority": priority,
               "accuracy_loss": accuracy_loss,
               "activation_sensitive": activation_sensitive}
    return {key: value for key, value in answers.items() if value is not None}


P, F, A = "primary", "follow-up", "alternative"

# (answers, leaf, expected ranked (scheme, role) pairs). Every leaf appears at
# least once; test_table_covers_every_leaf checks that.
CASES = [
    # No data: only float16 and dynamic range.
    (ask("none", "cpu", "size"), "dynamic_cpu", [("dynamic", P), ("float16", A)]),
    (ask("none", "cpu", "latency"), "dynamic_cpu", [("dynamic", P), ("float16", A)]),
    (ask("none", "cpu", "download_size"), "dynamic_cpu",
     [("dynamic", P), ("float16", A)]),
    (ask("none", "cpu", "accuracy"), "float16_cpu", [("float16", P), ("dynamic", A)]),
    (ask("none", "gpu", "latency"), "float16_gpu", [("float16", P)]),
    (ask("none", "android_gpu", "size"), "float16_dynamic_android_gpu",
     [("float16", P), ("dynamic", A)]),
    (ask("none", "edgetpu", "accuracy"), "integer_needs_samples", [("dynamic", A)]),
    (ask("none", "hexagon", "latency"), "integer_needs_samples", [("dynamic", A)]),
    (ask("none", "microcontroller", "size"), "integer_needs_samples",
     [("dynamic", A)]),
    # Unlabelled samples: full integer becomes possible.
    (ask("representative", "gpu", "size"), "float16_gpu", [("float16", P)]),
    (ask("representative", "android_gpu", "latency"), "float16_int8_android_gpu",
     [("float16", P), ("int8", A)]),
    (ask("representative", "cpu", "accuracy"), "float16_int8_cpu",
     [("float16", P), ("int8", A)]),
    (ask("representative", "cpu", "size"), "int8_cpu", [("int8", P), ("dynamic", A)]),
    (ask("representative", "cpu", "latency", activation_sensitive="no"), "int8_cpu",
     [("int8", P), ("dynamic", A)]),
    (ask("representative", "cpu", "latency", activation_sensitive="yes"),
     "int16x8_cpu", [("int16x8", P), ("dynamic", A)]),
    (ask("representative", "edgetpu", "accuracy"), "int8_integer",
     [("int8", P), ("qat", F)]),
    (ask("representative", "hexagon", "size"), "int8_integer",
     [("int8", P), ("qat", F)]),
    (ask("representative", "microcontroller", "latency", activation_sensitive="yes"),
     "int8_int16x8_integer", [("int8", P), ("int16x8", F), ("qat", A)]),
    (ask("representative", "edgetpu", "size", activation_sensitive="yes"),
     "int8_int16x8_integer", [("int8", P), ("int16x8", F), ("qat", A)]),
    # Labelled data: quantization-aware training, pruning and clustering too.
    (ask("labelled", "gpu", "accuracy"), "float16_gpu", [("float16", P)]),
    (ask("labelled", "gpu", "download_size"), "float16_prune_cluster_gpu",
     [("float16", P), ("prune", F), ("cluster", F)]),
    (ask("labelled", "android_gpu", "download_size"), "float16_prune_cluster_gpu",
     [("float16", P), ("prune", F), ("cluster", F)]),
    (ask("labelled", "android_gpu", "size"), "float16_int8_android_gpu",
     [("float16", P), ("int8", A)]),
    (ask("labelled", "cpu", "accuracy"), "float16_int8_cpu",
     [("float16", P), ("int8", A)]),
    (ask("labelled", "cpu", "download_size"), "int8_prune_cluster_cpu",
     [("int8", P), ("prune", F), ("cluster", F)]),
    (ask("labelled", "cpu", "size", "minimal"), "int8_qat_cpu",
     [("int8", P), ("qat", F)]),
    (ask("labelled", "cpu", "latency"), "int8_qat_cpu", [("int8", P), ("qat", F)]),
    (ask("labelled", "cpu", "latency", "few"), "int8_cpu",
     [("int8", P), ("dynamic", A)]),
    (ask("labelled", "cpu", "size", "minimal", "yes"), "int16x8_cpu",
     [("int16x8", P), ("dynamic", A)]),
    (ask("labelled", "edgetpu", "accuracy"), "int8_qat_integer",
     [("int8", P), ("qat", F)]),
    (ask("labelled", "hexagon", "latency", "minimal", "no"), "int8_qat_integer",
     [("int8", P), ("qat", F)]),
    (ask("labelled", "microcontroller", "size", "few"), "int8_integer_qat_optional",
     [("int8", P), ("qat", A)]),
    (ask("labelled", "edgetpu", "accuracy", activation_sensitive="yes"),
     "int8_qat_int16x8_integer", [("int8", P), ("qat", F), ("int16x8", A)]),
    (ask("labelled", "edgetpu", "download_size"), "int8_prune_cluster_qat_integer",
     [("int8", P), ("prune_qat", F), ("cluster_qat", F), ("prune_cluster_qat", A)]),
    (ask("labelled", "microcontroller", "download_size", "minimal", "yes"),
     "int8_prune_cluster_qat_integer",
     [("int8", P), ("prune_qat", F), ("cluster_qat", F), ("prune_cluster_qat", A)]),
]


def _case_id(case):
    return "-".join(case[0].values())


def every_answer_set():
    """Yields every combination of answers to all the questions."""
    values = [question.values for question in wizard.QUESTIONS]
    ids = [question.id for question in wizard.QUESTIONS]
    for combination in itertools.product(*values):
        yield dict(zip(ids, combination, strict=True))


@pytest.mark.parametrize("answers, leaf, expected", CASES, ids=map(_case_id, CASES))
def test_answers_lead_to_expected_leaf(answers, leaf, expected):
    rec = wizard.recommend(answers)
    assert rec.leaf == leaf
    assert [(item.scheme, item.role) for item in rec.items] == expected
    assert wizard.schemes(rec) == [scheme for scheme, _ in expected]


def test_table_covers_every_leaf():
    assert {leaf for _, leaf, _ in CASES} == set(wizard.leaves())


def test_every_leaf_is_reachable():
    reached = {wizard.recommend(answers).leaf for answers in every_answer_set()}
    assert reached == set(wizard.leaves())


def test_edgetpu_with_samples_gets_int8_then_qat():
    rec = wizard.recommend(
        {"data": "representative", "hardware": "edgetpu", "priority": "accuracy"}
    )
    primary, follow_up = rec.items
    assert (primary.scheme, primary.role) == ("int8", "primary")
    assert "int8 input and output" in primary.reason
    assert (follow_up.scheme, follow_up.role) == ("qat", "follow-up")
    assert "labelled" in follow_up.reason
    assert any("labelled training data" in warning for warning in rec.warnings)
    assert rec.path == (
        ("data", "representative"),
        ("samples.hardware", "edgetpu"),
        ("samples.integer.sensitive", "no"),
    )


def test_every_outcome_is_well_formed():
    for answers in every_answer_set():
        rec = wizard.recommend(answers)
        assert rec.items, answers
        assert rec.items[0].role in ("primary", "alternative"), answers
        assert [item.role for item in rec.items].count("primary") <= 1, answers
        assert len(set(wizard.schemes(rec))) == len(rec.items), answers
        for item in rec.items:
            assert item.scheme in SCHEME_NAMES, (answers, item)
            assert item.role in wizard.ROLES, (answers, item)
            assert item.reason and item.tradeoff, (answers, item)
            assert item.source in wizard.SOURCES, (answers, item)


@pytest.mark.parametrize("hardware", INTEGER_ONLY)
def test_integer_only_hardware_without_data_says_nothing_runs(hardware):
    rec = wizard.recommend({"data": "none", "hardware": hardware, "priority": "size"})
    assert [item.role for item in rec.items] == ["alternative"]
    text = " ".join(rec.warnings)
    assert "nothing that can be made without data runs on it" in text
    assert "100-500" in text
    assert "int8, int16x8 and quantization-aware training are ruled out" in text


@pytest.mark.parametrize("answers, phrase", [
    (ask("none", "cpu", "size"), "slower than float32 on x86"),
    (ask("labelled", "cpu", "download_size"), "shrink only the compressed (gzipped)"),
    (ask("labelled", "hexagon", "download_size"),
     "shrink only the compressed (gzipped)"),
    (ask("representative", "cpu", "size", activation_sensitive="yes"),
     "reference kernels"),
    (ask("representative", "hexagon", "size"), "representative sample"),
    (ask("none", "gpu", "accuracy"), "ruled out"),
    (ask("representative", "cpu", "download_size"), "need labelled training data"),
    (ask("none", "cpu", "download_size"), "need labelled training data"),
    (ask("representative", "edgetpu", "size", activation_sensitive="yes"),
     "Edge TPU runs only 8-bit models"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_known_disappointments_are_warned(answers, phrase):
    assert any(phrase in warning for warning in wizard.recommend(answers).warnings)


@pytest.mark.parametrize("answers, phrase", [
    (ask("labelled", "gpu", "latency"), "x86"),
    (ask("labelled", "cpu", "latency"), "gzipped"),
    (ask("representative", "hexagon", "size", activation_sensitive="yes"),
     "Edge TPU"),
    (ask("labelled", "edgetpu", "accuracy"), "Quantization-aware training needs"),
])
def test_warnings_only_where_they_apply(answers, phrase):
    assert not any(phrase in warning for warning in wizard.recommend(answers).warnings)


def test_refinements_default_when_left_out():
    short = wizard.recommend(ask("labelled", "edgetpu", "accuracy"))
    full = wizard.recommend(ask("labelled", "edgetpu", "accuracy", "about_one", "no"))
    assert short == full


def test_answers_off_the_path_are_ignored_but_none_means_unanswered():
    with_extra = wizard.recommend(ask("none", "gpu", "size", "few", "yes"))
    assert with_extra.leaf == "float16_gpu"
    rec = wizard.recommend({"data": "none", "hardware": "gpu", "priority": None})
    assert rec.leaf == "float16_gpu"


@pytest.mark.parametrize("answers, message", [
    ({"data": "none", "hardware": "tpu", "priority": "size"},
     "Unknown answer 'tpu' to 'hardware'; accepted values: cpu, gpu, android_gpu, "
     "edgetpu, hexagon, microcontroller."),
    ({"data": "some", "hardware": "cpu", "priority": "size"},
     "Unknown answer 'some' to 'data'; accepted values: none, representative, "
     "labelled."),
    ({"data": "none", "hardware": "cpu", "priority": "size", "budget": "low"},
     "Unknown question 'budget'; accepted questions: data, hardware, priority, "
     "accuracy_loss, activation_sensitive."),
    ({"hardware": "cpu", "priority": "size"},
     "Missing answer to 'data'; accepted values: none, representative, labelled."),
    ({"data": "none", "hardware": "cpu"},
     "Missing answer to 'priority'; accepted values: size, latency, accuracy, "
     "download_size."),
    ({"data": "labelled", "hardware": "cpu", "priority": "size",
      "accuracy_loss": "0.5"},
     "Unknown answer '0.5' to 'accuracy_loss'; accepted values: minimal, about_one, "
     "few."),
])
def test_bad_answers_raise_with_accepted_values(answers, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        wizard.recommend(answers)


def test_questions_cover_the_brief():
    options = {question.id: question.values for question in wizard.QUESTIONS}
    assert options == {
        "data": ("none", "representative", "labelled"),
        "hardware": ("cpu", "gpu", "android_gpu", "edgetpu", "hexagon",
                     "microcontroller"),
        "priority": ("size", "latency", "accuracy", "download_size"),
        "accuracy_loss": ("minimal", "about_one", "few"),
        "activation_sensitive": ("no", "yes"),
    }
    for question in wizard.QUESTIONS:
        assert question.text and question.help
        assert question.default in (None, *question.values)
        assert all(label for _, label in question.options)


def test_graph_is_complete_and_consistent():
    graph = wizard.as_graph()
    ids = [node["id"] for node in graph["nodes"]]
    assert len(ids) == len(set(ids))
    assert ids[0] == "data"
    questions = {question.id: question for question in wizard.QUESTIONS}
    for node in graph["nodes"]:
        out = [edge for edge in graph["edges"] if edge["source"] == node["id"]]
        if node["kind"] == "leaf":
            assert not out
            assert node["schemes"] and set(node["schemes"]) <= set(SCHEME_NAMES)
            continue
        answers = [value for edge in out for value in edge["answers"]]
        assert sorted(answers) == sorted(questions[node["question"]].values)
    assert {edge["target"] for edge in graph["edges"]} == set(ids) - {"data"}


@pytest.mark.parametrize("answers, leaf, expected", CASES, ids=map(_case_id, CASES))
def test_path_follows_graph_edges(answers, leaf, expected):
    rec = wizard.recommend(answers)
    graph = wizard.as_graph()
    step = {(e["source"], answer): e["target"]
            for e in graph["edges"] for answer in e["answers"]}
    node = "data"
    for source, answer in rec.path:
        assert source == node
        node = step[(source, answer)]
    assert node == rec.leaf
    leaf_node = next(n for n in graph["nodes"] if n["id"] == rec.leaf)
    assert leaf_node["schemes"] == wizard.schemes(rec)


def test_next_question_walks_the_path():
    assert wizard.next_question({}).id == "data"
    assert wizard.next_question({"data": "none"}).id == "hardware"
    assert wizard.next_question({"data": "none", "hardware": "gpu"}) is None
    answers = {"data": "labelled", "hardware": "edgetpu", "priority": "size"}
    assert wizard.next_question(answers).id == "activation_sensitive"
    answers["activation_sensitive"] = "no"
    assert wizard.next_question(answers).id == "accuracy_loss"


def test_recommendation_is_frozen():
    rec = wizard.recommend(ask("none", "gpu", "size"))
    with pytest.raises(AttributeError):
        rec.items = ()
    with pytest.raises(AttributeError):
        rec.items[0].scheme = "int8"


def test_wizard_uses_only_the_standard_library_and_the_scheme_registry():
    tree = ast.parse(WIZARD_FILE.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    ours = {name for name in imported if name.startswith("optlib")}
    assert ours == {"optlib.engine"}  # the registry: each scheme's trade-off lives in its entry
    assert {name.split(".")[0] for name in imported - ours} <= set(sys.stdlib_module_names) | {"__future__"}


def test_scheme_names_match_the_registry():
    from optlib.engine.schemes import names

    assert set(names()) == set(SCHEME_NAMES)


def test_what_a_leaf_recommends_comes_from_the_entries_advice():
    from optlib.engine import schemes

    for entry in schemes.list_schemes(variants=True):
        for leaf, advice in entry.advice.items():
            assert leaf in wizard.leaves(), (entry.name, leaf)  # a misspelt leaf would be advice nobody reads
            assert advice.role in wizard.ROLES and advice.source in wizard.SOURCES, (entry.name, leaf)
    for leaf in wizard.leaves():
        advised = {entry.name for entry in schemes.list_schemes(advised_for=leaf, variants=True)}
        answers = next(answers for answers in every_answer_set() if wizard.recommend(answers).leaf == leaf)
        assert set(wizard.schemes(wizard.recommend(answers))) == advised, leaf


@pytest.fixture
def advised_plugin():
    """A plugin's scheme that the wizard recommends at one leaf, registered for one test and then taken out."""
    from optlib.engine import schemes

    entry = schemes.register(schemes.Scheme(
        "plugin_int4", "post-training", "Plugin int4", "A test entry.", "representative", "m:f",
        tradeoff="Smaller still.",
        advice={"int8_cpu": schemes.Advice("follow-up", "If int8 is not small enough.", wizard.GUIDE)}))
    yield entry
    schemes.unregister(entry.name)


def test_a_scheme_joins_a_leaf_with_one_entry(advised_plugin):
    rec = wizard.recommend({"data": "representative", "hardware": "cpu", "priority": "size"})
    assert rec.leaf == "int8_cpu"
    assert [(item.scheme, item.role) for item in rec.items] == [
        ("int8", "primary"), ("plugin_int4", "follow-up"), ("dynamic", "alternative")]  # ranked by role
    assert rec.items[1] == wizard.Item("plugin_int4", "follow-up", "If int8 is not small enough.", "Smaller still.",
                                       wizard.GUIDE)
    leaf = next(node for node in wizard.as_graph()["nodes"] if node["id"] == "int8_cpu")
    assert leaf["schemes"] == ["int8", "plugin_int4", "dynamic"]


# --- The drawing (to_dot) and the cited sources ------------------------------------

DOT_NODE = re.compile(r'^  "([^"]+)" \[label="((?:[^"\\]|\\.)*)"(.*)\];$', re.M)
DOT_EDGE = re.compile(r'^  "([^"]+)" -> "([^"]+)" \[label="((?:[^"\\]|\\.)*)"(.*)\];$', re.M)
ACCENT = "#ff6f00"


def drawn(answers=None):
    """The DOT of the tree as {node id: (label, highlighted)} and [(source, target, label, highlighted)]."""
    source = wizard.to_dot(answers)
    assert source.startswith("digraph wizard {") and source.endswith("}")
    nodes = {node: (label, ACCENT in look) for node, label, look in DOT_NODE.findall(source)}
    edges = [(a, b, label, ACCENT in look) for a, b, label, look in DOT_EDGE.findall(source)]
    assert len(source.splitlines()) == 5 + len(nodes) + len(edges)  # header, body, "}"
    return nodes, edges


def test_dot_draws_a_strict_tree_with_every_edge_of_the_graph():
    nodes, edges = drawn()
    graph = wizard.as_graph()
    targets = [target for _, target, _, _ in edges]
    assert len(targets) == len(set(targets)) == len(nodes) - 1  # one parent each: a tree
    assert set(nodes) - set(targets) == {"data"}
    assert len(edges) == len(graph["edges"])
    leaves_drawn = [node.split(">")[-1] for node in nodes if ">" in node]
    assert set(leaves_drawn) == set(wizard.leaves())
    assert len(leaves_drawn) == len([e for e in graph["edges"] if e["target"] in wizard.leaves()])


@pytest.mark.parametrize("answers, leaf, expected", CASES, ids=map(_case_id, CASES))
def test_dot_highlights_exactly_the_path_of_the_answers(answers, leaf, expected):
    rec = wizard.recommend(answers)
    nodes, edges = drawn(answers)
    path = [node for node, _ in rec.path]
    drawn_leaf = f"{path[-1]}>{leaf}"
    assert [(a, b) for a, b, _, hit in edges if hit] == list(zip(path, [*path[1:], drawn_leaf]))
    assert {node for node, (_, hit) in nodes.items() if hit} == {*path, drawn_leaf}
    assert nodes[drawn_leaf][0].replace("\\n", " · ").split(" · ") == wizard.schemes(rec)


def test_dot_of_a_partial_answer_stops_where_an_answer_is_missing():
    nodes, edges = drawn({"data": "labelled", "hardware": "cpu"})
    assert [(a, b) for a, b, _, hit in edges if hit] == [
        ("data", "labels.hardware"), ("labels.hardware", "labels.cpu.priority")]
    assert {node for node, (_, hit) in nodes.items() if hit} == {
        "data", "labels.hardware", "labels.cpu.priority"}
    nodes, edges = drawn()
    assert not any(hit for *_, hit in edges)
    assert [node for node, (_, hit) in nodes.items() if hit] == ["data"]


def test_dot_labels_are_short_answers_and_questions():
    nodes, edges = drawn()
    assert nodes["data"][0] == "Data you have"
    labels = {(a, b): label for a, b, label, _ in edges}
    assert labels[("data", "samples.hardware")] == "Unlabelled samples"
    assert labels[("samples.hardware", "samples.integer.sensitive")] == (
        "Edge TPU\\nHexagon DSP\\nMicrocontroller")
    assert labels[("no_data.cpu.priority", "no_data.cpu.priority>float16_cpu")] == "Accuracy"


def test_dot_rejects_bad_answers_like_recommend():
    with pytest.raises(ValueError, match=re.escape("Unknown answer 'tpu' to 'hardware'")):
        wizard.to_dot({"data": "none", "hardware": "tpu"})


def test_dot_strings_are_escaped():
    assert wizard._quote('a "b" \\ c\nd') == '"a \\"b\\" \\\\ c\\nd"'


def test_every_cited_source_has_a_title_and_no_file_name():
    cited = {item.source for answers in every_answer_set() for item in wizard.recommend(answers).items}
    assert cited <= set(wizard.SOURCES)
    for source, (title, url) in wizard.SOURCES.items():
        assert title and ".txt" not in source + title + str(url), source
        assert url is None or url.startswith("https://"), source


def test_sources_are_cited_by_title_and_address():
    assert wizard.SOURCES[wizard.GUIDE] == (
        "TensorFlow Lite guide: Model optimization", "https://www.tensorflow.org/lite/performance/model_optimization")
    assert wizard.SOURCES[wizard.TALE][0] == "A Tale of Model Quantization in TF Lite"
    assert wizard.cite(wizard.GUIDE) == (
        "TensorFlow Lite guide: Model optimization (https://www.tensorflow.org/lite/performance/model_optimization)")
    assert wizard.cite(wizard.TALE) == "A Tale of Model Quantization in TF Lite"  # no address known: the title alone


def test_the_path_alone_folds_the_branches_not_taken_and_reads_top_to_bottom():
    answers = {"data": "representative", "hardware": "cpu", "priority": "size"}
    whole, path = wizard.to_dot(answers), wizard.to_dot(answers, path_only=True)
    assert "rankdir=LR" in whole and "rankdir=TB" in path
    assert path.count("->") * 3 < whole.count("->")  # a fraction of the drawing
    highlighted = [line for line in whole.splitlines() if "penwidth" in line]
    assert highlighted == [line for line in path.splitlines() if "penwidth" in line]  # the same path, lit the same
    folded = [line for line in path.splitlines() if "dashed" in line]
    assert folded and all("penwidth" not in line for line in folded)
    assert any("Runs on …" in line for line in folded)  # a question behind a branch not taken, not expanded
    assert wizard.to_dot({}, path_only=True).count("->") == 3  # nothing answered: the first question's branches


def test_no_edge_of_any_drawing_is_labelled_none():
    """'None' between two arrows reads as a missing value: the answer 'None, only the trained model' is 'Only the
    model' there."""
    for answers in [{}, *every_answer_set()]:
        for source in (wizard.to_dot(answers), wizard.to_dot(answers, path_only=True)):
            labels = [label for *_, label, _ in DOT_EDGE.findall(source)]
            assert labels and not any(part in ("None", "nan", "") for label in labels for part in label.split("\\n"))
    assert any(label == "Only the model" for *_, label, _ in DOT_EDGE.findall(wizard.to_dot({})))


def test_the_whole_tree_comes_in_parts_below_data_and_hardware_that_cover_every_edge():
    answers = {"data": "labelled", "hardware": "edgetpu", "priority": "accuracy"}
    parts = wizard.branches(answers)
    graph = wizard.as_graph()
    second = [e for e in graph["edges"] if e["source"] in {f["target"] for f in graph["edges"] if f["source"] == "data"}]
    assert [part.node for part in parts] == [e["target"] for e in second]
    assert [(p.data, p.hardware) for p in parts if p.taken] == [("Labelled data", "Edge TPU, Hexagon DSP, Microcontroller")]
    drawn_edges = 0
    for part in parts:
        if part.schemes:  # a leaf right below the hardware: said in a line, not drawn
            assert part.node in wizard.leaves()
            continue
        source = wizard.to_dot(answers, root=part.node)
        assert "rankdir=TB" in source
        drawn_edges += len(DOT_EDGE.findall(source))
        leaves = [node for node, _, _ in DOT_NODE.findall(source) if ">" in node]
        assert len(leaves) <= 5  # a few boxes wide: legible at 1024 px (the e2e test measures the text)
    assert drawn_edges + len(parts) + 3 == len(drawn()[1])  # with the first two questions' edges: the whole tree
    lit = wizard.to_dot(answers, root="labels.integer.priority")
    assert sum(ACCENT in line for line in lit.splitlines() if "->" in line) == 3  # the path lit inside its part
