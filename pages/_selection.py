"""The current selection of this browser session (model, data, trusted loading, task), whether it can run,
and this session's background work (one job at a time; a sweep started here).
"""

from pathlib import Path

import streamlit as st

from optlib.errors import InputError
from pages._results import store_path


def model_ref():
    return st.session_state["app_model_ref"]


def data_ref():
    return st.session_state["app_data_ref"]


def model_name():
    """The current model's name as the store records it (a zoo name, or the model file's name)."""
    return Path(model_ref()).name


def trusted():
    return bool(st.session_state["app_trusted"])


def task():
    """The task setting chosen on the Model & data page ("auto": detected from the model and data)."""
    return st.session_state["app_task"]


def model_form():
    """What the current model is (``ModelSource.form``: keras, savedmodel, tflite, tflite-quantized), read from
    its file without loading it; "keras" when the reference does not resolve (the pages say why elsewhere).
    Kept per file and its modification time: resolving hashes the whole file, and Optimize reruns every second
    while a sweep runs."""
    ref = model_ref()
    try:
        changed = Path(ref).stat().st_mtime_ns
    except OSError:
        changed = 0  # a zoo name, or a file that is gone (resolving says so)
    return _form_of(ref, changed)


@st.cache_data(show_spinner=False, max_entries=32)
def _form_of(ref, changed):
    from optlib.inputs import models

    try:
        return models.resolve(ref).form
    except InputError:
        return "keras"


def model_label():
    """The model as a person knows it: zoo name or the uploaded file's name."""
    return st.session_state["app_model_label"] or st.session_state["app_model_ref"]


def data_label():
    return st.session_state["app_data_label"] or st.session_state["app_data_ref"]


def _select(kind, ref, label):
    """Make ``ref`` the current model or data; rerun so the sidebar shows it at once."""
    current = (st.session_state[f"app_{kind}_ref"], st.session_state[f"app_{kind}_label"])
    if current != (str(ref), label):
        st.session_state[f"app_{kind}_ref"], st.session_state[f"app_{kind}_label"] = str(ref), label
        st.rerun()


def select_model(ref, label=""):
    _select("model", ref, label)


def select_data(ref, label=""):
    _select("data", ref, label)


def refuse(kind, ref, reason):
    """Remember that the Model & data page could not use ``ref`` as the ``kind`` ("model" or "data"), and why."""
    st.session_state["app_refused"] = {**st.session_state["app_refused"], kind: (str(ref), reason)}


def accept(kind):
    """The current model (or data) loaded and fits: nothing stands in the way of a run."""
    st.session_state["app_refused"] = {k: v for k, v in st.session_state["app_refused"].items() if k != kind}


def selection_problem():
    """Why the current model or data cannot be run (as the Model & data page found it), or None."""
    for kind, current in (("model", model_ref()), ("data", data_ref())):
        ref, reason = st.session_state["app_refused"].get(kind, (None, ""))
        if ref == str(current):
            return f"The {'model' if kind == 'model' else 'dataset'} could not be used: {reason}"
    return None


def run_blocked_reason():
    """Why a Run button must stay disabled now (a refused model or data, or other work running), or None."""
    problem = selection_problem()
    if problem:
        return f"{problem} Choose another on the Model & data page."
    running = busy()
    return f"Work is running on {BACKGROUND_JOBS[running][1]}; wait for it to finish." if running else None


# Every page's background job (session state key -> the page that shows its progress).
BACKGROUND_JOBS = {
    "optimize_job": ("pages/optimize.py", "Optimize"),
    "tables_job": ("pages/tables.py", "Table 1 & 2"),
    "tables_t2_job": ("pages/tables.py", "Table 1 & 2"),
    "insight_layer_job": ("pages/insight.py", "Layer insight & search"),
    "insight_selective_job": ("pages/insight.py", "Layer insight & search"),
    "insight_search_job": ("pages/insight.py", "Layer insight & search"),
}


def start_sweep(selected, overrides, recompute=False, budget_s=None, where="local", labels=None):
    """Start a sweep of the ``selected`` schemes on the current model and data in the background, as this
    session's Optimize job (its page shows the progress); the address carries its token, so a reload finds it."""
    from pages._jobs import SweepJob

    from pages import _workspace

    job = SweepJob(model_ref=model_ref(), data_ref=data_ref(), selection=",".join(selected), overrides=overrides,
                   store=store_path(), recompute=recompute, trusted=trusted(), budget_s=budget_s, where=where,
                   labels=labels, task=task(), workspace=_workspace.token()).start()
    st.session_state["optimize_job"] = job
    st.query_params["job"] = job.token
    return job


def busy():
    """The key of this session's running background job, if any (one at a time: they share two cores)."""
    for key in BACKGROUND_JOBS:
        job = st.session_state.get(key)
        if job is not None and job.running:
            return key
    return None
