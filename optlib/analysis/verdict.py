"""The verdict of one model's comparison, in a sentence per goal: which scheme to take for size, and for speed.

    for line in verdict(report.latest(frame_of_one_model_and_dataset)):
        print(line.goal, line.scheme, line.sentence)

It reads only the measured figures of the frame (:func:`optlib.analysis.report.frame`):
the deltas and ratios against the float32 run of the same model and dataset.
"""

import math
from dataclasses import dataclass

from optlib.analysis.explain import speed_phrase
from optlib.units import format_bytes

BASELINE = "float32"
GOALS = {"size": ("gzip_bytes", "the smallest download"), "speed": ("latency_ms", "the fastest")}


@dataclass(frozen=True)
class Verdict:
    goal: str  # "size" or "speed"
    scheme: str | None  # None: no scheme beats float32 within the accuracy budget
    run_id: int | None
    sentence: str


def _finite(value):
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def _figures(row):
    parts = []
    if _finite(row["gzip_ratio"]):
        parts.append(f"{row['gzip_ratio']:.1f}× smaller download ({format_bytes(row['gzip_bytes'])})")
    speed = speed_phrase(row["speedup"])
    if speed:
        parts.append(speed)
    if _finite(row["accuracy_delta"]):
        parts.append(f"top-1 {row['accuracy_delta']:+.1f} points ({row['accuracy']:.1%})")
    return ", ".join(parts)


def verdict(view, max_loss=1.0):
    """One :class:`Verdict` per goal for the runs of one model and dataset (newest per scheme).

    Args:
        view: a results frame holding one model and dataset, with its float32 run.
        max_loss: how many points of top-1 a scheme may lose against float32 to be chosen.
            A model without an accuracy figure (untrained) is judged on size and speed alone,
            and the sentence says so.

    Returns:
        ``[]`` without an ok float32 run (nothing to compare with); else a Verdict for size
        and one for speed, naming the best scheme that beats float32 on that goal.
    """
    ok = view[view["status"].eq("ok")]
    if not ok["scheme"].eq(BASELINE).any():
        return []
    measured = ok["accuracy"].notna().any()
    allowed = ok[ok["accuracy_delta"].ge(-max_loss)] if measured else ok
    allowed = allowed[allowed["scheme"].ne(BASELINE)]
    found = []
    for goal, (column, best) in GOALS.items():
        ratio = "gzip_ratio" if goal == "size" else "speedup"
        better = allowed[allowed[ratio].gt(1.0)].dropna(subset=[column])
        budget = f"within {max_loss:g} point{'s' if max_loss != 1 else ''} of float32's top-1" if measured \
            else "(no accuracy measured: an untrained model)"
        if better.empty:
            found.append(Verdict(goal, None, None, f"No scheme beats float32 on {goal} {budget}: keep float32 "
                                                   f"or widen the budget."))
            continue
        row = better.sort_values([column, "id"]).iloc[0]
        found.append(Verdict(goal, row["scheme"], int(row["id"]),
                             f"For {goal}, take {row['scheme']} ({row['title']}): {best} {budget} — "
                             f"{_figures(row)}."))
    return found
