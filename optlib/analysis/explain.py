"""Plain-language explanations of surprising results, from the measured figures.

"Why is this slower?" and "why didn't this shrink?" — each explanation
quotes the numbers of the run and of its float32 baseline, and the reason
the TensorFlow Lite guide gives, cited by its title. :func:`explain` reads
one run; :func:`explanations` all the runs of a :func:`optlib.analysis.report.frame`,
each against its own baseline.
"""

import math

from optlib.analysis import failures
from optlib.analysis.report import BASELINE
from optlib.engine import measure, schemes
from optlib.guide import wizard
from optlib.units import format_bytes

GUIDE = wizard.SOURCES[wizard.GUIDE][0]  # cited by title, as the Wizard cites it


def explain(row, baseline):
    """Return a list of explanations for one result row compared with its float32 baseline.

    Both are result rows (flat dicts with size_bytes, gzip_bytes, latency_ms, sparsity...).
    Returns an empty list when nothing needs explaining or there is no baseline.
    """
    if not baseline or row.get("status") != "ok" or baseline.get("status") != "ok" or row is baseline:
        return []
    notes = []
    scheme = row["scheme"]
    lat, base_lat = _median(row), _median(baseline)
    size, base_size = row.get("size_bytes"), baseline.get("size_bytes")
    gzip, base_gzip = row.get("gzip_bytes"), baseline.get("gzip_bytes")
    entry = schemes.find(scheme)
    if lat and base_lat and lat > 1.05 * base_lat:
        why = (entry.slower_because if entry and entry.slower_because
               else "quantized kernels pay off most on integer hardware and mobile CPUs")
        cited = f" [{wizard.SOURCES[entry.slower_source][0]}]" if entry and entry.slower_source else ""
        stored = f" It stores its weights in {size / base_size:.0%} of the space." if size and base_size else ""
        notes.append(f"Why is this slower? {entry.title if entry else scheme} takes {lat:.3g} ms against "
                     f"{base_lat:.3g} ms for float32 ({lat / base_lat:.1f}x slower) on this machine: {why}"
                     f"{cited}.{stored}")
    if size and base_size and size > 0.9 * base_size and gzip and base_gzip and gzip < 0.85 * base_gzip:
        what = ("zeroes " + f"{row.get('sparsity', 0):.0%} of the weights" if entry and entry.prunes
                else f"leaves at most {row.get('max_unique_weights')} distinct values per kernel")
        notes.append(f"Why didn't this shrink? {scheme} {what}, but TFLite stores them densely: the file is "
                     f"{format_bytes(size)} against {format_bytes(base_size)} for float32. Compressed for download "
                     f"it is {format_bytes(gzip)} against {format_bytes(base_gzip)} ({1 - gzip / base_gzip:.0%} "
                     f"smaller): pruned and clustered models gain only from compression [{GUIDE}].")
    return notes


def _median(row):
    latency = row.get("latency_ms")
    return latency.get("median") if isinstance(latency, dict) else latency


def _explainable(row):
    """A frame row as the flat dict :func:`optlib.analysis.explain.explain` reads (NaN -> None, counts as ints)."""
    flat = {}
    for key in ("id", "model", "dataset", "scheme", "status", "size_bytes", "gzip_bytes", "latency_ms", "sparsity",
                "max_unique_weights", "threads"):
        value = row.get(key)
        if _missing(value):
            value = None
        if key == "max_unique_weights" and value is not None:
            value = int(value)
        flat[key] = value
    return flat


def explanations(df, pool=None):
    """Say why runs of ``df`` are slower than float32, or did not shrink, from their measured figures.

    Each ok run is compared with the newest ok float32 run of the same model
    and dataset in ``pool`` (default: ``df``), timed with the same threads
    when there is one; runs :func:`optlib.analysis.report.frame` found no baseline for
    (NaN ``size_ratio``) are left out.

    Returns:
        list of dicts: id, model, dataset, scheme, notes (a list of sentences); runs
        with nothing to explain are left out.
    """
    pool = df if pool is None else pool
    bases = pool[(pool["status"] == "ok") & (pool["scheme"] == BASELINE)].sort_values("id", ascending=False)
    found = []
    for _, row in df[(df["status"] == "ok") & (df["scheme"] != BASELINE)].iterrows():
        if "size_ratio" in row and _missing(row["size_ratio"]):
            continue  # report.frame found no float32 run of this very model and data
        same = bases[(bases["model"] == row["model"]) & (bases["dataset"] == row["dataset"])]
        timed = same[same["threads"] == row["threads"]]
        base = timed if not timed.empty else same
        if base.empty:
            continue
        notes = explain(_explainable(row), _explainable(base.iloc[0]))
        if notes:
            found.append({"id": row["id"], "model": row["model"], "dataset": row["dataset"], "scheme": row["scheme"],
                          "notes": notes})
    return found


def _missing(value):
    """True for a frame's NaN (or infinity): no figure."""
    try:
        return not math.isfinite(value)
    except TypeError:  # None, text, a dict of latencies
        return False


def fallback_note(latency):
    """Say that the Interpreter timed a latency figure and why; None when CompiledModel timed it.

    Args:
        latency: the dict :func:`optlib.engine.measure.latency` returned (as stored with a run), a
            row of :func:`optlib.analysis.report.frame` (its ``runtime`` and
            ``fallback_reason`` columns), or None.

    Returns:
        e.g. ``"timed on LiteRT Interpreter (XNNPACK): LiteRT's CompiledModel has no int16 tensors, and
        this model's input is int16"`` (a reason :mod:`optlib.analysis.failures` knows, in words), ``"...:
        CompiledModel could not run it (ValueError: ...)"`` (one it does not know); None when CompiledModel timed it or the
        figure was stored before runtimes were recorded.
    """
    runtime = latency.get("runtime") if hasattr(latency, "get") else None
    if not isinstance(runtime, str) or runtime == measure.COMPILED_MODEL:
        return None
    reason = latency.get("fallback_reason")
    said = failures.in_words(reason) if isinstance(reason, str) and reason else None
    if said is not None and said.known:  # in words; the raw message stays in the run's record
        first = said.what.split()[0]
        what = said.what if first[1:] != first[1:].lower() else said.what[0].lower() + said.what[1:]  # keep "LiteRT"
        return f"timed on {runtime}: {what.rstrip('.')}"
    # Figures stored before the reason was recorded still say that the runtime differs.
    reason = said.raw if said is not None else "the reason was not recorded"
    return f"timed on {runtime}: CompiledModel could not run it ({reason})"


def speed_phrase(speedup, than=""):
    """A speed-up said the right way round: "1.9× faster", "1.9× slower" or "as fast" (+ " than X" / " as X").

    Returns None when the speed-up is unknown.
    """
    if speedup is None or not math.isfinite(speedup) or speedup <= 0:
        return None
    if round(speedup, 1) == 1.0:
        return "as fast" + (f" as {than}" if than else "")
    phrase = f"{speedup:.1f}× faster" if speedup > 1 else f"{1 / speedup:.1f}× slower"
    return phrase + (f" than {than}" if than else "")


def chance_baselines(df, margin=1.5):
    """The float32 baselines whose top-1 is about what guessing would get: every comparison with them says little.

    Args:
        df: a frame from :func:`optlib.analysis.report.frame` (its ``classes`` column says how many classes
            the model predicts).
        margin: a baseline within this many times the chance level (1 / classes) counts as chance.

    Returns:
        One sentence per model and dataset whose newest ok float32 run is at chance, quoting both figures.
    """
    found = []
    base = df[(df["scheme"] == BASELINE) & (df["status"] == "ok")].sort_values("id", ascending=False)
    for (model, dataset), runs in base.groupby(["model", "dataset"], sort=True):
        row = runs.iloc[0]
        if not (row["classes"] >= 2 and row["accuracy"] == row["accuracy"]):  # unknown classes or no accuracy
            continue
        chance = 1.0 / row["classes"]
        if row["accuracy"] <= margin * chance:
            found.append(f"float32 top-1 of {model} on {dataset} is {row['accuracy']:.1%}, about chance for "
                         f"{int(row['classes'])} classes ({chance:.1%}): the model is untrained or does not match "
                         "this data, so its comparisons say little. Check the model and the data on Model & data.")
    return found
