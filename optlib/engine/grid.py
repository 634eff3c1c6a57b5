"""Grids of settings: several values of a setting make one job per combination.

``--param prune.sparsity=0.3,0.5,0.7,0.9 --param cluster.clusters=8,16,32`` asks
for four prune jobs and three cluster jobs. A value is a list of values when it
is a list (the Python API, the app) or text with commas for a setting that
takes numbers, true/false or one of a few choices; free text (``keep_float``,
a list of layer names) keeps its commas.

    >>> [s["sparsity"] for s in expand("prune", {"prune.sparsity": "0.3,0.5"})]
    [0.3, 0.5]
"""

import itertools

from optlib.engine import schemes
from optlib.errors import InputError


def _params_named(key):
    """The settings a key may name: the scoped scheme's, or every scheme's of that name."""
    scope, _, name = key.rpartition(".")
    found = [p for scheme in ([scope] if scope else schemes.names(variants=True)) if schemes.known(scheme)
             for p in schemes.params_of(scheme) if p.name == name]
    return found


def _is_list(key, value):
    if isinstance(value, (list, tuple)):
        return True
    if not isinstance(value, str) or "," not in value:
        return False
    return any(p.choices or not isinstance(p.default, str) for p in _params_named(key))


def values(key, value):
    """The values of one override as a list (one value unless it is a list or comma-separated text)."""
    if not _is_list(key, value):
        return [value]
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    items = [v for v in items if not (isinstance(v, str) and not v)]
    if not items:
        raise InputError(f"Setting '{key}' was given an empty list of values; give at least one.")
    return items


def check(overrides):
    """Raise InputError for an unknown setting or any value of a list that does not fit its setting."""
    for key, value in (overrides or {}).items():
        for item in values(key, value):
            schemes.check_overrides({key: item})


def expand(name, overrides=None):
    """Every settings dict of scheme ``name`` that the overrides ask for (one per combination), in order.

    A list applies to a scheme as a single value does (a scoped key to its scheme, an unscoped
    one to every scheme with that setting); combinations that give the same settings count once.
    """
    keys = list(overrides or {})
    choices = [values(key, overrides[key]) for key in keys]
    found = []
    for combination in itertools.product(*choices):
        settings = schemes.settings_for(name, dict(zip(keys, combination)))
        if settings not in found:
            found.append(settings)
    return found


def varying(specs):
    """{index: {setting: value}} for each job: the settings that differ between jobs of the same scheme."""
    by_scheme = {}
    for spec in specs:
        by_scheme.setdefault(spec.scheme, []).append(spec)
    labels = {}
    for jobs in by_scheme.values():
        names = [n for n in jobs[0].settings if len({repr(j.settings.get(n)) for j in jobs}) > 1]
        for job in jobs:
            labels[job.index] = {n: job.settings[n] for n in names}
    return labels


def label(scheme, settings):
    """'prune (sparsity=0.3)': a job's scheme and the grid settings that tell it apart."""
    return scheme + (f" ({', '.join(f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}' for k, v in settings.items())})"
                     if settings else "")
