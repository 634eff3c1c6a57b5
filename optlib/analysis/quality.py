"""A run's headline quality: its task's metric (top-1, accuracy at 0.5, MAE) with the direction that is better.

Every place that ranks runs, says how much one loses against float32 or
prints a run's figure in a line of text reads it from here, so a
regression model's MAE is treated as carefully as a classifier's top-1.
It works on a result dict (the engine's rows) and on a row of
:func:`optlib.analysis.report.frame` alike: both carry ``metric_name``,
``metric_value`` and ``higher_is_better`` (rows from before tasks were
recorded have ``accuracy`` only, and are classifiers).
"""

import math

TOP1 = "Top-1 accuracy"
PERCENT_METRICS = (TOP1, "Accuracy at 0.5")
SHORT_NAMES = {TOP1: "top-1", "Accuracy at 0.5": "accuracy at 0.5"}


def _present(value):
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def name(row):
    """The metric's name ("Top-1 accuracy", "MAE")."""
    given = row.get("metric_name")
    return given if isinstance(given, str) and given else TOP1


def value(row):
    """The metric's value (a fraction for accuracies, the metric's own unit otherwise), or None."""
    found = row.get("metric_value")
    if not _present(found):
        found = row.get("accuracy")
    return float(found) if _present(found) else None


def short_name(row):
    """The metric's name inside a sentence ("top-1", "accuracy at 0.5", "MAE")."""
    return SHORT_NAMES.get(name(row), name(row))


def higher_is_better(row):
    given = row.get("higher_is_better")
    return True if given is None or (isinstance(given, float) and math.isnan(given)) else bool(given)


def is_percent(row):
    return name(row) in PERCENT_METRICS


def direction(row):
    return "higher is better" if higher_is_better(row) else "lower is better"


def label(row):
    """The metric as a column or axis says it: "Top-1 accuracy (%)", "MAE (lower is better)"."""
    return f"{name(row)} (%)" if is_percent(row) else f"{name(row)} ({direction(row)})"


def shown(row):
    """The value as a table shows it: percent for accuracies, the metric's own unit otherwise (None if missing)."""
    found = value(row)
    return None if found is None else (100 * found if is_percent(row) else found)


def delta(row, base):
    """row minus base in the metric's unit (a fraction for accuracies, like ``value``), None if either is missing."""
    a, b = value(row), value(base)
    return None if a is None or b is None else a - b


def figure(row):
    """The value as a tile shows it: "97.5%" for accuracies, "44.88" otherwise, or None when not measured."""
    found = value(row)
    if found is None:
        return None
    return f"{found:.1%}" if is_percent(row) else f"{found:.4g}"


def text(row):
    """One phrase for a line of text: "top-1 97.5%", "MAE 44.88 (lower is better)", or "" when not measured."""
    if figure(row) is None:
        return ""
    if is_percent(row):
        return f"{short_name(row)} {figure(row)}"
    return f"{name(row)} {figure(row)} ({direction(row)})"


def loss(row, base):
    """How much worse than ``base`` the row is, relative to it (0.01 = 1% worse; negative when it is better).

    Higher-is-better metrics lose when they drop, lower-is-better ones (MAE) when they grow.
    """
    a, b = value(row), value(base)
    if a is None or b is None or b == 0:
        return None
    return (b - a) / abs(b) if higher_is_better(base) else (a - b) / abs(b)


def limit(base, max_loss):
    """The worst value within ``max_loss`` of the baseline: a floor for accuracies, a ceiling for MAE."""
    b = value(base)
    return b - abs(b) * max_loss if higher_is_better(base) else b + abs(b) * max_loss


def only_top1(df):
    """True when every run of a results frame is measured by top-1 (or by nothing): tables keep the guide's
    "Top-1 accuracy (%)" columns."""
    rows = df[df["status"] == "ok"] if "status" in df else df
    measured = rows[rows["metric_value"].notna()] if "metric_value" in rows else rows
    return "metric_name" not in measured or measured["metric_name"].fillna(TOP1).eq(TOP1).all()


def best_first(row):
    """Sort key: the best value first in the metric's own direction, unmeasured rows last."""
    found = value(row)
    if found is None:
        return (1, 0.0)
    return (0, -found if higher_is_better(row) else found)


def in_table_units(df):
    """A copy of a results frame whose metric columns read as a table shows them.

    ``metric_name`` gets its unit or direction ("Accuracy at 0.5 (%)", "MAE
    (lower is better)"), ``metric_value`` is in percent for accuracies and in
    the metric's own unit otherwise, and ``metric_delta`` in points for
    accuracies: a binary model's 0.88 reads 88.0 beside "(%)", as Table 1 and
    the tiles show it.
    """
    shown_df = df.copy()
    if "metric_value" not in shown_df:
        return shown_df
    rows = shown_df.to_dict("records")
    percent = [is_percent(row) for row in rows]
    shown_df["metric_value"] = [shown(row) if _present(row.get("metric_value")) else None for row in rows]
    if "metric_delta" in shown_df:
        shown_df["metric_delta"] = [100 * d if p and _present(d) else d
                                    for d, p in zip(shown_df["metric_delta"], percent)]
    if "metric_name" in shown_df:
        shown_df["metric_name"] = [label(row) if _present(row.get("metric_name")) else None for row in rows]
    return shown_df
