"""Optimize's sweep options: a grid of settings (several values per setting) and where the jobs run."""

import os

import streamlit as st

from optlib.engine import grid, schemes
from optlib.errors import InputError

WHERE = {"local": "This machine (worker processes)",
         "ray": "Ray cluster ($RAY_ADDRESS, or a Ray started on this machine)"}


def grid_key(name):
    return f"optimize_grid_{name}"


def _listable(param):
    return isinstance(param.default, (int, float)) and not isinstance(param.default, bool) and not param.choices


def parse(param, text):
    """The values of a comma-separated field, each checked by the setting (InputError if one does not fit)."""
    return [param.parse(item.strip()) for item in text.split(",") if item.strip()]


def grid_ui(selected):
    """One text field per numeric setting of the selected schemes; return ({setting: [values]}, problem or "").

    A field left empty keeps the single value set above; two or more values make one job per value
    (per combination, with several fields).
    """
    params, used_by = {}, {}
    for name in selected:
        for param in schemes.params_of(name):
            if _listable(param):
                params[param.name] = param
                used_by.setdefault(param.name, []).append(name)
    found, problems = {}, []
    with st.expander("Grid: several values of a setting", icon=":material/grid_on:"):
        st.caption("Comma-separated values, e.g. sparsity 0.3, 0.5, 0.7, 0.9: one run per value, and per "
                   "combination when several settings have values. Compare then plots size and accuracy "
                   "against the setting.")
        ordered = sorted(params.values(), key=lambda p: (p.group not in ("Pruning and clustering",), p.name))
        for column, param in zip(st.columns(3) * len(ordered), ordered):
            text = column.text_input(f"{param.title} values", key=grid_key(param.name),
                                     placeholder=f"e.g. {param.default}, ...",
                                     help=f"{param.help}. Used by: {', '.join(used_by[param.name])}.")
            if not text.strip():
                continue
            try:
                values = parse(param, text)
            except InputError as problem:
                column.error(str(problem), icon=":material/error:")
                problems.append(str(problem))
                continue
            found[param.name] = values
    return found, " ".join(problems)


def where_ui():
    """Where the jobs run: "local" or "ray"."""
    return st.selectbox("Run on", list(WHERE), format_func=WHERE.get, key="optimize_where",
                        help="Ray runs each scheme as a Ray task: on the cluster at $RAY_ADDRESS "
                             f"({os.environ.get('RAY_ADDRESS') or 'not set'}), or on a Ray started on this "
                             "machine for the sweep. The store and the results are the same either way.")


def labels(jobs):
    """A line name per job: its scheme, and the grid settings that tell it from the scheme's other jobs."""
    varying = grid.varying(jobs)
    return [grid.label(job.scheme, varying[job.index]) for job in jobs]
