"""Session state: every default in one place, and :func:`init_state`, which sets them.

Session state keys:

- ``app_*``: the engine selection of this browser session (model and data
  references, their display labels, the trusted flag, the upload folder).
- ``data_*``, ``optimize_*``, ``compare_*``, ``export_*``, ``home_*``, ``wizard_*``, ``tables_*``,
  ``insight_*``: widgets and values of one page each.
"""

import os
from pathlib import Path

import streamlit as st

from optlib.engine import schemes

DEFAULT_MODEL = "digits_cnn"
DEFAULT_DATA = "digits"
DEFAULT_SCHEMES = ("float32", "float16", "dynamic", "int8", "int16x8")
TABLE1_DATA = "digits"  # built in: calibration and fine-tuning data when no other dataset is chosen
# Layer insight & search's widgets (set again in each of its runs: see init_state).
INSIGHT_DEFAULTS = {"insight_worst_n": 1, "insight_debug_metric": "rmse/scale", "insight_debug_order": "worst",
                    "insight_max_loss": 1.0, "insight_objective": "size", "insight_trials": 4, "insight_budget": 0}


# Widgets of a page that is not on screen lose their state; values under these
# prefixes are carried over page switches. Buttons, uploaders, downloads and
# charts cannot be set through session state, so their keys end with one of
# the suffixes below and are left alone.
KEPT_PREFIXES = ("data_", "optimize_", "compare_", "export_", "home_", "insight_")
NOT_KEPT_SUFFIXES = ("_button", "_upload", "_download", "_chart", "_table")


def param_key(name):
    """Session-state key of the Optimize page widget for a scheme setting."""
    return f"optimize_param_{name}"


def scheme_key(name):
    """Session-state key of the Optimize page checkbox for a scheme."""
    return f"optimize_scheme_{name}"


def _defaults():
    values = {
        "app_model_ref": DEFAULT_MODEL, "app_model_label": "",
        "app_data_ref": DEFAULT_DATA, "app_data_label": "",
        "app_trusted": False, "app_upload_dir": "", "app_refused": {}, "app_task": "auto",
        "data_model_source": "zoo", "data_zoo_model": DEFAULT_MODEL,
        "data_data_source": "digits", "data_tfds_name": "", "data_tfds_split": "",
        "data_trusted": False,
        "optimize_recompute": False, "optimize_budget": 0, "optimize_job": None,
        "compare_size_axis": "size_mb", "compare_quality_axis": "metric", "export_chart": "scatter_size",
    }
    for scheme in schemes.list_schemes(variants=True):  # variants: LiteRT Quantizer's are ticked on Optimize
        values[scheme_key(scheme.name)] = scheme.name in DEFAULT_SCHEMES
        for param in schemes.params_of(scheme.name):
            values[param_key(param.name)] = param.default
    return values


def reattach_sweep():
    """A new session whose address names a sweep (``?job=...``, set when Run was pressed) takes it up again:
    its progress, and the model, data and schemes it runs. A reload or a second tab does this."""
    from pages import _jobs

    job = _jobs.find(st.query_params.get("job", ""))
    if job is None or not hasattr(job, "selected"):
        return
    arguments = job.arguments
    model, data_ = str(arguments["model_ref"]), str(arguments["data_ref"])
    st.session_state.update({"optimize_job": job, "app_model_ref": model, "app_data_ref": data_,
                             "app_model_label": Path(model).name if os.sep in model else "",
                             "app_data_label": Path(data_).name if os.sep in data_ else "",
                             "app_trusted": bool(arguments["trusted"]),
                             "optimize_recompute": bool(arguments["recompute"]),
                             **{scheme_key(scheme.name): scheme.name in job.selected
                                for scheme in schemes.list_schemes(variants=True)}})


def through_router(page_file):
    """Send a page that runs without the router through app.py, then on to the page.

    Because this app keeps its pages in a folder named ``pages/``, Streamlit
    runs a page script on its own (no app.py, so no state and no sidebar)
    when the very first request of a fresh server names that page. Every
    page calls this first; app.py forwards to the page once it has set up.
    """
    if "app_model_ref" not in st.session_state:
        st.session_state["app_entry_page"] = f"pages/{Path(page_file).name}"
        st.switch_page("app.py")


def follow_entry_page():
    """In app.py, after navigation is set up: go on to the page that was asked for first."""
    entry = st.session_state.pop("app_entry_page", None)
    if entry:
        st.switch_page(entry)


def _init_tables():
    """Table 1 & 2's session state; the reproduction choices come back as they were after a page switch.

    Streamlit forgets the values of widgets that another page's run did not
    draw, so the choices are also kept under ``tables_kept`` (not a widget).
    """
    from optlib.analysis import tables

    st.session_state.setdefault("tables_kept", {"tables_models": list(tables.TABLE1_MODELS), "tables_qat": False,
                                                "tables_data": TABLE1_DATA})
    for key, value in {**st.session_state["tables_kept"], "tables_job": None, "tables_t2_job": None}.items():
        st.session_state.setdefault(key, value)


def init_state(page=""):
    """Initialise session state with the defaults above.

    app.py calls this with no page in every run, before the page: the session's values are set once (a
    session whose address names a sweep takes it up again) and page widgets are kept across page switches.
    Table 1 & 2 and Layer insight & search call it with their name for values they set in their own runs.
    """
    if page == "insight":
        # This page's values are set again in every run, as for the other pages below: set only once, the
        # browser could keep showing a widget's minimum after the page was opened from the navigation.
        for key, value in INSIGHT_DEFAULTS.items():
            st.session_state[key] = st.session_state.get(key, value)
        return
    if page == "tables":
        _init_tables()
        return
    if "app_model_ref" not in st.session_state:
        reattach_sweep()
    for key, value in _defaults().items():
        st.session_state.setdefault(key, value)
    for key in list(st.session_state.keys()):
        if key.startswith(KEPT_PREFIXES) and not key.endswith(NOT_KEPT_SUFFIXES):
            st.session_state[key] = st.session_state[key]
