"""Accuracy-targeted search: the smallest or fastest model within an accepted loss of the task's metric.

The loss is relative to the float32 baseline in the metric's own direction
(:mod:`optlib.analysis.quality`): top-1 may drop by at most ``max_loss`` of
its value, a regression model's MAE may grow by at most that much.

Candidates are tried in a sensible order — cheap post-training schemes
first, then selective int8 variants, then training-time schemes — each as
an ordinary run (served from the store when it exists). The search stops
when the trials or the time budget are spent, always returns the best
candidate found, and says whether it met the target. Every trial is kept
as the trail, with the reason it was or was not chosen.
"""

import time

from optlib.analysis import quality
from optlib.engine import executors, schemes, sweep
from optlib.engine.store import Store
from optlib.errors import InputError

OBJECTIVES = ("size", "latency", "mix")


def order(objective):
    """(scheme, settings) in the order the search tries them, from each scheme's registry entry.

    Cheap and broadly useful candidates come first; "mix" tries them in the size order.
    """
    wanted = "size" if objective == "mix" else objective
    places = [(c.rank, scheme.name, c.settings) for scheme in schemes.list_schemes(variants=True)
              for c in scheme.search
              if c.objective == wanted]
    return [(name, dict(settings)) for _, name, settings in sorted(places, key=lambda p: p[0])]


def objective_value(row, baseline, objective, weight=0.5):
    """Lower is better: bytes, milliseconds, or a weighted mix of both relative to float32."""
    size, latency = row["size_bytes"], row["latency_ms"]["median"]
    if objective == "size":
        return float(size)
    if objective == "latency":
        return float(latency)
    return weight * size / baseline["size_bytes"] + (1 - weight) * latency / baseline["latency_ms"]["median"]


def search(model_ref, data_ref, max_loss=0.01, objective="size", trials=8, budget_s=None, store=None,
           overrides=None, progress=None, weight=0.5, trusted=False, device=None):
    """Search for the best model within ``max_loss`` relative loss of the task's metric.

    Args:
        max_loss: accepted loss relative to the float32 figure (0.01 = 1% of it): top-1 at least 99% of
            float32's, MAE at most 101% of it.
        objective: "size", "latency" or "mix" (``weight`` on size, the rest on latency).
        trials: most candidates to try (the float32 baseline is not counted).
        budget_s: stop starting new trials after this many seconds.
        trusted: load a model with Lambda layers or custom objects (runs code from the file).
        device: a device every candidate must fit (:func:`optlib.engine.targets.parse_device`); None for any.

    Returns:
        dict: target, baseline row, best (row or None), met (bool), explanation, trail (list).

    Raises:
        InputError: bad arguments, or the float32 baseline itself cannot be made.
    """
    if objective not in OBJECTIVES:
        raise InputError(f"Unknown objective '{objective}'; use one of {', '.join(OBJECTIVES)}.")
    if trials < 1:
        raise InputError("The search needs at least one trial.")
    started = time.monotonic()
    sweep.plan(model_ref, data_ref, "float32", overrides, trusted=trusted)  # bad input fails here, before anything is written
    store = store if isinstance(store, Store) else Store(store)
    # One worker for every trial: TensorFlow, the model and the data load once, not once per trial.
    with executors.LocalWorkers(count=1) as workers:
        def run(scheme, extra=None, recompute=False):
            row = sweep.run(model_ref, data_ref, scheme, {**(overrides or {}), **(extra or {})}, store,
                            progress=progress, trusted=trusted, executor=workers, recompute=recompute)["results"][0]
            if device is not None and row["status"] == "ok" and not row.get("targets") and not recompute:
                return run(scheme, extra, recompute=True)  # stored before targets were measured: measure them now
            return row

        base = run("float32")
        if base["status"] != "ok":
            raise InputError(f"The float32 baseline failed ({base.get('error')}); the search needs it as its "
                             "reference. Check the model and data with a sweep of float32 alone.")
        if quality.value(base) is None:
            raise InputError(f"The float32 baseline has no {quality.name(base)} "
                             f"({base.get('accuracy_note') or 'no labels in the test data'}); the search compares "
                             "candidates by it, so it needs a trained model and test data with labels (y_test).")
        if quality.value(base) == 0:
            raise InputError(f"The float32 baseline's {quality.name(base)} is 0, so a loss relative to it has no "
                             "meaning; check the test labels, or compare the schemes on Compare instead.")
        bound = quality.limit(base, max_loss)
        trail, best, closest = [], None, None
        for scheme, extra in order(objective)[:trials]:
            if budget_s and time.monotonic() - started > budget_s:
                trail.append({"scheme": scheme, "settings": extra, "verdict": "not tried: time budget spent"})
                break
            row = run(scheme, extra)
            entry = {"scheme": scheme, "settings": extra, "id": row.get("id"), "status": row["status"],
                     "accuracy": row.get("accuracy"), "metric_name": quality.name(base),
                     "metric_value": quality.value(row), "size_bytes": row.get("size_bytes"),
                     "latency_ms": (row.get("latency_ms") or {}).get("median")}
            if row["status"] != "ok" or quality.value(row) is None:
                entry["verdict"] = f"failed: {row.get('error') or row.get('accuracy_note')}"
                trail.append(entry)
                continue
            entry["loss"] = quality.loss(row, base)
            entry["objective"] = objective_value(row, base, objective, weight)
            entry["met"] = entry["loss"] <= max_loss + 1e-12
            if device is not None and not _fits(entry, row, device):
                trail.append(entry)
                continue
            if closest is None or (entry["loss"], entry["objective"]) < (closest["loss"], closest["objective"]):
                closest = entry
            if entry["met"] and (best is None or entry["objective"] < best["objective"]):
                entry["verdict"] = "meets the target; best so far"
                best = entry
            elif entry["met"]:
                entry["verdict"] = f"meets the target, but {best['scheme']} is better on {objective}"
            else:
                entry["verdict"] = (f"loses {100 * entry['loss']:.2f}% of float32's {quality.name(base)}, "
                                    f"more than the {100 * max_loss:.2f}% accepted")
            trail.append(entry)
    chosen = best or closest
    explanation = _explain(best, closest, base, max_loss, objective)
    if device is not None and closest is None and any("fits" in t for t in trail):
        explanation = f"No candidate runs on {device['label']}: " + "; ".join(
            f"{t['scheme']} ({t['why']})" for t in trail if t.get("fits") is False) + "."
    higher = quality.higher_is_better(base)
    return {"target": {"max_loss": max_loss, "metric_name": quality.name(base), "higher_is_better": higher,
                       "bound": bound, **({"min_accuracy": bound} if base.get("accuracy") is not None else {}),
                       "objective": objective, **({"device": device} if device else {})},
            "baseline": {"accuracy": base.get("accuracy"), "metric_name": quality.name(base),
                         "metric_value": quality.value(base), "higher_is_better": higher,
                         "size_bytes": base["size_bytes"],
                         "latency_ms": base["latency_ms"]["median"], "id": base["id"]},
            "best": chosen, "met": best is not None, "explanation": explanation,
            "trail": trail}


def _fits(entry, row, device):
    """Record in the trail entry whether the candidate runs on the device; a candidate that does not is set aside."""
    from optlib.engine import targets

    entry["fits"], why = targets.fits(row.get("targets"), device)
    if not entry["fits"]:
        entry["why"] = why
        entry["verdict"] = f"does not run on {device['label']}: {why}"
    return entry["fits"]


def _explain(best, closest, base, max_loss, objective):
    if best is not None:
        smaller = base["size_bytes"] / best["size_bytes"]
        figure = f"{quality.short_name(best)} {quality.figure(best)}"  # "top-1 97.5%", as the tiles say it
        return (f"{best['scheme']} meets the target ({figure}, a loss of "
                f"{100 * best['loss']:.2f}% ≤ {100 * max_loss:.2f}%) and is the best on {objective} among the "
                f"candidates tried: {smaller:.2f}x smaller than float32.")
    if closest is not None:
        return (f"No candidate met the target of at most {100 * max_loss:.2f}% loss; the closest is "
                f"{closest['scheme']} with a loss of {100 * closest['loss']:.2f}%.")
    return "No candidate could be evaluated; see the trail for the reasons."
