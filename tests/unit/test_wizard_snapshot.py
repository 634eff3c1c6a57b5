"""The wizard says what it said before its leaves' schemes moved into the registry's entries (issue 26).

``wizard_snapshot.json`` was written by :func:`snapshot` from the wizard as it stood when each leaf named
its schemes in the tree. Every combination of answers (a question with a default also left out) must
still reach the same leaf by the same path, with the same items (scheme, role, reason, trade-off,
source) in the same order, the same warnings and settings; the graph and the drawing are the same too.

A deliberate change of what the wizard says regenerates the file:

    .venv/bin/python -c "import tests.unit.test_wizard_snapshot as t; t.SNAPSHOT.write_text(t.dump(t.snapshot()))"
"""

import itertools
import json
from pathlib import Path

from optlib.guide import wizard

SNAPSHOT = Path(__file__).with_name("wizard_snapshot.json")
LEFT_OUT = "-"  # an answer not given, in an answers key


def answer_sets():
    """Every combination of answers; a question with a default may also be left out."""
    values = [q.values + ((LEFT_OUT,) if q.default is not None else ()) for q in wizard.QUESTIONS]
    for combination in itertools.product(*values):
        yield " ".join(combination), {q.id: v for q, v in zip(wizard.QUESTIONS, combination, strict=True)
                                      if v != LEFT_OUT}


def snapshot():
    """What the wizard says, as plain data: the items of each leaf once, then every answer set's outcome.

    Outcomes are grouped: ``outcomes`` lists each distinct (leaf, path, warnings, settings) with the answer
    keys ("data hardware priority accuracy_loss activation_sensitive", "-" for left out) that reach it.
    """
    leaves, warnings, outcomes = {}, [], {}
    for key, answers in answer_sets():
        rec = wizard.recommend(answers)
        items = [[i.scheme, i.role, i.reason, i.tradeoff, i.source] for i in rec.items]
        assert leaves.setdefault(rec.leaf, items) == items, rec.leaf  # a leaf says one thing
        for text in rec.warnings:
            if text not in warnings:
                warnings.append(text)
        outcome = json.dumps([rec.leaf, [list(step) for step in rec.path],
                              [warnings.index(text) for text in rec.warnings], dict(rec.settings)])
        outcomes.setdefault(outcome, []).append(key)
    return {
        "leaves": leaves,
        "warnings": warnings,
        "outcomes": [dict(zip(("leaf", "path", "warnings", "settings"), json.loads(o), strict=True), answers=keys)
                     for o, keys in outcomes.items()],
        "graph": wizard.as_graph(),
        "dot": wizard.to_dot(),
        "branches": [[b.data, b.hardware, b.node, list(b.schemes)] for b in wizard.branches()],
    }


def dump(value, depth=0):
    """JSON with one line per leaf item, outcome field, graph node or edge: a diff of it reads line by line."""
    if depth >= 3 or not isinstance(value, (dict, list)) or not value:
        return json.dumps(value, ensure_ascii=False)
    pad = " " * (depth + 1)
    inner = ([f"{pad}{json.dumps(k)}: {dump(v, depth + 1)}" for k, v in value.items()] if isinstance(value, dict)
             else [pad + dump(v, depth + 1) for v in value])
    brackets = "{}" if isinstance(value, dict) else "[]"
    return brackets[0] + "\n" + ",\n".join(inner) + "\n" + " " * depth + brackets[1] + ("\n" if not depth else "")


def test_every_answer_set_gets_what_it_got_before_the_leaves_moved_into_the_entries():
    before = json.loads(SNAPSHOT.read_text())
    now = snapshot()
    assert list(now["leaves"]) == list(before["leaves"])
    for leaf, items in before["leaves"].items():
        assert now["leaves"][leaf] == items, leaf
    assert now["warnings"] == before["warnings"]
    assert now["outcomes"] == before["outcomes"]
    assert sum(len(o["answers"]) for o in now["outcomes"]) == len(list(answer_sets()))
    assert now["graph"] == before["graph"]
    assert now["dot"] == before["dot"]
    assert now["branches"] == before["branches"]
