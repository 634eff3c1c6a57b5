"""How long schemes took on this machine before: estimates from stored runs, never assumed figures.

:func:`typical_seconds` reads stored runs (:meth:`optlib.engine.store.Store.rows`)
and gives the median time per scheme of the earlier finished ones;
:func:`estimate` says it in words for the pages, or says plainly that there
is nothing to go by.

    >>> typical = typical_seconds(store.rows(status="ok"), model="digits_cnn")
    >>> estimate(typical, ["qat", "prune"], "digits_cnn")
    'about 25 s in all on this machine, from earlier runs of digits_cnn'

Importing this module does not import TensorFlow.
"""

import math
import statistics

NOTHING_TO_GO_BY = "no earlier runs on this machine to estimate from"


def _seconds(row):
    """The recorded wall time of one run (``total_s``: build and measurement), or None."""
    metrics = row["metrics"] if isinstance(row.get("metrics"), dict) else row
    value = metrics.get("total_s")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return None
    return float(value)


def typical_seconds(rows, model=None):
    """Return the median time each scheme took in this machine's earlier finished runs.

    Args:
        rows: stored rows (:meth:`optlib.engine.store.Store.rows`, metrics in a
            ``metrics`` dict) or flat result rows (:func:`optlib.engine.store.result_row`).
        model: count only runs of the model of this name (as stored), or of
            every model when None.

    Returns:
        ``{scheme: median seconds}`` over the ok runs that recorded ``total_s``
        (the build and the measurement, without loading the model). A scheme
        without such a run is absent. Rows served from the store (``cached``)
        repeat a run already counted and are left out.
    """
    taken = {}
    for row in rows:
        if row.get("status") != "ok" or row.get("cached") or (model is not None and row.get("model") != model):
            continue
        seconds = _seconds(row)
        if seconds is not None:
            taken.setdefault(row.get("scheme"), []).append(seconds)
    return {scheme: statistics.median(values) for scheme, values in taken.items()}


def duration(seconds):
    """A duration as a person says it: '0.4 s', '12 s', '3 min', '1 h 10 min'."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds // 3600:.0f} h {seconds % 3600 / 60:.0f} min"


def estimate(typical, names, runs_of=None):
    """Say how long ``names`` took here before, or that there is nothing to go by.

    Args:
        typical: what :func:`typical_seconds` returned.
        names: the schemes about to run.
        runs_of: the model the earlier runs were of, named in the phrase.

    Returns:
        A phrase such as ``'about 12 s on this machine, from earlier runs'``
        (one scheme), ``'about 40 s in all on this machine, from earlier
        runs'`` (several), with the schemes that have no earlier run named;
        :data:`NOTHING_TO_GO_BY` when none of them ran here before.
    """
    names = list(names)
    known = [name for name in names if name in typical]
    unknown = [name for name in names if name not in typical]
    if not known:
        return NOTHING_TO_GO_BY
    total = duration(sum(typical[name] for name in known))
    source = f"on this machine, from earlier runs{f' of {runs_of}' if runs_of else ''}"
    if len(names) == 1:
        return f"about {total} {source}"
    if not unknown:
        return f"about {total} in all {source}"
    return (f"about {total} for {', '.join(known)} {source}; "
            f"no earlier runs of {', '.join(unknown)} to estimate from")


# A run's phases, in the order they happen (optlib.engine.job; "store" is the sweep's driver writing it). The float
# model's outputs may be made during the build too, while another worker converts: they count here all the same.
PHASES = {"worker_start": "starting the worker", "load_model": "loading the model", "load_data": "loading the data",
          "build": "building", "size": "size", "evaluate": "evaluation",
          "float_reference": "the float model's outputs", "fidelity": "fidelity", "latency_wait": "waiting to time",
          "latency": "timing the latency", "weights": "reading the weights", "targets": "target checks",
          "micro": "TensorFlow Lite Micro", "store": "storing"}
ONCE_PER_WORKER = ("worker_start", "load_model", "load_data")  # every job of a worker repeats its figure


def phases_text(phases):
    """A run's phase times in words: "building 2.10 s · accuracy 0.40 s · ..." (starting the worker and loading
    the model and the data happen once per worker, before its first job)."""
    return " · ".join(f"{PHASES.get(name, name)} {seconds:.2f} s" for name, seconds in phases.items()
                      if isinstance(seconds, (int, float)))


def where_the_time_went(rows):
    """{phase: seconds summed over the rows} (a worker's start and loading counted once per worker process),
    phases in the order they happen, for the benchmark."""
    total, workers = {}, set()
    for row in rows:
        phases = row.get("phases_s") or {}
        for name, seconds in phases.items():
            if name in ONCE_PER_WORKER:
                if (row.get("pid"), name) in workers:
                    continue
                workers.add((row.get("pid"), name))
            total[name] = round(total.get(name, 0.0) + seconds, 2)
    order = list(PHASES)
    return dict(sorted(total.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))
