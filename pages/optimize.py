"""Optimize: pick schemes and their settings, run them, and watch each one finish."""

import streamlit as st

from optlib.analysis import explain, failures, quality, report, timing
from optlib.engine import schemes, sweep
from optlib.engine.store import Store
from optlib.errors import InputError
from optlib.inputs import graph_models
from optlib.units import format_bytes
from pages import _results, _selection, _shared, _state, _sweep_options
from pages._optimize_backends import lq_schemes_ui

_state.through_router(__file__)

def select_family(family):
    """Button callback: select exactly the schemes of one family (or all with None) that this model can take."""
    form = _selection.model_form()
    for scheme in schemes.list_schemes():
        st.session_state[_state.scheme_key(scheme.name)] = (family is None or scheme.family == family) \
            and not schemes.refusal(scheme.name, form)


def scheme_box(scheme, form, where=st):
    """One scheme's checkbox: disabled, with the reason, when this model cannot take it (never selected then)."""
    key = _state.scheme_key(scheme.name)
    why_not = schemes.refusal(scheme.name, form)
    if why_not and st.session_state.get(key):
        st.session_state[key] = False
    where.checkbox(f"{scheme.title} (`{scheme.name}`)", key=key, disabled=bool(why_not),
                   help=f"Not for this model: {why_not}." if why_not else scheme.summary)
    return why_not


def schemes_ui():
    """Draw the scheme checkboxes grouped by family; return the selected names in registry order."""
    form = _selection.model_form()
    buttons = st.columns(4)
    buttons[0].button("Post-training only", key="optimize_ptq_button", on_click=select_family,
                      args=("post-training",), width="stretch")
    buttons[1].button("Everything", key="optimize_all_button", on_click=select_family, args=(None,),
                      width="stretch")
    buttons[2].button("Nothing", key="optimize_none_button", on_click=select_family, args=("",),
                      width="stretch")
    if graph_models.WHAT_FOLLOWS.get(form):  # what this model's format can take, once, above the boxes
        st.info(f"This model is {graph_models.WHAT_FOLLOWS[form]}", icon=":material/info:")
    columns = st.columns(len(schemes.FAMILIES), gap="medium")
    for column, family in zip(columns, schemes.FAMILIES):
        with column.container(border=True):
            st.markdown(f"**{schemes.FAMILY_TITLES[family]}**")
            for scheme in schemes.list_schemes(family=family):
                why_not = scheme_box(scheme, form)
                st.caption(f"Not for {graph_models.FORMS.get(form, 'this model')} (the ? says why)." if why_not
                           else f"Needs {schemes.NEEDS[scheme.needs]}.")
    return [name for name in schemes.names() if st.session_state[_state.scheme_key(name)]] + lq_schemes_ui(form)


def param_widget(param, used_by):
    """One widget for one setting; its value lives in session state under the setting's key."""
    key = _state.param_key(param.name)
    label = param.title
    help_text = f"{param.help}. Used by: {', '.join(used_by)}. Default: {param.default}."
    low, high = param.min, param.max
    if isinstance(param.default, bool):
        st.checkbox(label, key=key, help=help_text)
    elif param.choices:
        st.selectbox(label, list(param.choices), key=key, help=help_text)
    elif isinstance(param.default, int):
        st.number_input(label, min_value=None if low is None else int(low), max_value=None if high is None else int(high),
                        step=1, key=key, help=help_text)
    elif isinstance(param.default, float):
        step, fmt = (1e-5, "%.5f") if param.name == "learning_rate" else (0.05, "%.2f")
        st.number_input(label, min_value=low, max_value=high, step=step, format=fmt, key=key, help=help_text)
    else:
        st.text_input(label, key=key, help=help_text)


def settings_ui(selected):
    """Draw the settings the selected schemes use; return the overrides that differ from the defaults."""
    used_by = {}
    params = {}
    if not selected:
        return {}
    for name in selected:
        for param in schemes.params_of(name):
            params[param.name] = param
            used_by.setdefault(param.name, []).append(name)
    with st.expander("Settings", icon=":material/settings:"):
        titles = list(dict.fromkeys([*schemes.GROUPS, *(p.group or "Other" for p in params.values())]))
        shown = [(title, [p for p in params.values() if (p.group or "Other") == title]) for title in titles]
        shown = [(title, group) for title, group in shown if group]
        for column, (title, group) in zip(st.columns(len(shown)), shown):
            with column:
                st.markdown(f"**{title}**")
                for param in group:
                    param_widget(param, used_by[param.name])
        st.caption("A setting applies to every selected scheme that has it. Changing a setting makes a new "
                   "run; the same model, data, scheme and settings are served from the store.")
    overrides = {}
    for name, param in params.items():
        value = st.session_state[_state.param_key(name)]
        if value != param.default:
            overrides[name] = value
    return overrides


def row_line(row):
    """What a finished row says in the live status."""
    if row.get("status") != "ok":
        return failures.sentence(row["error"]) if row.get("error") else "no reason given"
    parts = []
    if quality.text(row):
        parts.append(quality.text(row))
    parts.append(format_bytes(row.get("size_bytes")))
    latency = row.get("latency_ms") or {}
    if isinstance(latency, dict) and latency.get("median") is not None:
        parts.append(f"{latency['median']:.3f} ms")
        note = explain.fallback_note(latency)
        if note:  # the Interpreter's figure is not comparable with CompiledModel's: say so
            parts.append(note)
    return " · ".join(parts)


def progress_ui(job):
    """The progress bar, one line per scheme with its live status, and the results so far."""
    fraction, message, states = job.state()
    if not job.running:
        fraction, message = job.ended()  # "Done", or "Stopped — 1 of 5 finished" after Stop
    st.progress(fraction, text=message)
    with st.container(border=True):
        for name in job.selected:
            stage, text, row = states.get(name, ("waiting", "", None))
            st.markdown(_results.status_line(name, stage, row_line(row) if row else text))
    rows = [row for _, _, row in states.values() if row]
    _shared.raw_messages_ui({f"{row['scheme']} ({'latency' if row.get('status') == 'ok' else row.get('status')})":
                             (row.get("error") if row.get("status") != "ok"
                              else (row.get("latency_ms") or {}).get("fallback_reason")) for row in rows})
    if job.running and rows:
        st.markdown("**Results so far**")
        _results.results_text_table(report.frame(rows))


@st.fragment(run_every=1.0)
def live_progress_ui(job):
    """Redrawn every second while the sweep runs; the whole page is redrawn once when it ends."""
    progress_ui(job)
    stopping = job.cancel.is_set()
    st.button("Stopping…" if stopping else "Stop", icon=":material/stop_circle:", key="optimize_stop_button",
              on_click=job.stop, disabled=stopping,
              help="Stops the sweep within a second: finished schemes stay in the store; the ones running are "
                   "marked 'interrupted' and run again next time.")
    if not job.running:
        st.rerun()


def last_run_ui(job):
    """The outcome of the last sweep of this session: summary, each scheme's line, table, code per result."""
    if job.error:
        progress_ui(job)
        st.error(f"{job.error} Fix the model or data on the Model & data page, then run again.",
                 icon=":material/error:")
        st.page_link("pages/model_data.py", label="Model & data", icon=":material/dataset:")
        return
    result = job.result
    rows = result["results"]
    stopped = [row["scheme"] for row in rows if row["status"] in ("interrupted", "cancelled")]
    failed = [row["scheme"] for row in rows if row["status"] not in ("ok", "cached", "interrupted", "cancelled")]
    ok = len(rows) - len(failed) - len(stopped)
    message = f"{ok} of {len(rows)} schemes finished on **{result['model']}** with **{result['dataset']}**."
    if stopped:
        message += f" Stopped before they finished: {', '.join(stopped)} (run again to continue)."
    if failed:
        message += f" Failed: {', '.join(failed)} (reasons below)."
    if failed or stopped:
        st.warning(message, icon=":material/warning:")
    else:
        st.success(message, icon=":material/check_circle:")
    progress_ui(job)  # below the summary: each scheme's line, a failed one's reason in words
    if result.get("model_note"):
        st.caption(f"Note: {result['model_note']}.")
    _results.results_table(report.frame(rows))
    st.page_link("pages/compare.py", label="Compare these results in charts", icon=":material/monitoring:")
    st.markdown("**Reproduce a result** — short TensorFlow code that makes the same model:")
    for row in rows:
        if row["status"] == "ok":
            with st.expander(f"Code for {row['scheme']}", icon=":material/code:"):
                _results.code_ui(row["id"])


def run_ui(selected, overrides, grid_problem, where, recompute, budget):
    """The count of what will run, the Run button, and the progress or outcome of the sweep."""
    if not selected:
        st.info("Select at least one scheme to run.", icon=":material/info:")
        return
    try:
        inputs, jobs = sweep.plan(_selection.model_ref(), _selection.data_ref(), ",".join(selected), overrides,
                                  trusted=_selection.trusted(), task=_selection.task())
    except InputError as problem:  # a refused model (the allowlist) or data: Run stays disabled, saying why
        blocked = (_selection.run_blocked_reason()
                   or f"{problem} Choose another model or dataset on the Model & data page.")
        st.error(_shared.literal(blocked), icon=":material/block:")
        st.button(f"Run {len(selected)} scheme{'s' if len(selected) != 1 else ''}", type="primary",
                  icon=":material/play_arrow:", key="optimize_run_button", disabled=True, help=blocked)
        return

    store = Store(_results.store_path())
    to_run = [job.scheme for job in jobs if recompute or not store.lookup(job.key)]
    stored = len(jobs) - len(to_run)
    training = [name for name in to_run if schemes.get(name).needs == "training"]
    notes = [f"{len(selected)} scheme{'s' if len(selected) != 1 else ''} selected"]
    if stored:
        notes.append(f"{stored} of them already in the store (served at once)")
    if training:
        earlier = timing.estimate(_results.typical_seconds(inputs.model.name), training, inputs.model.name)
        notes.append(f"{len(training)} of them fine-tune{'s' if len(training) == 1 else ''} the model first ({earlier})")
    st.caption("; ".join(notes) + ". The sweep runs in the background: look at other pages meanwhile; "
               "every finished scheme is kept in the store.")

    job = st.session_state["optimize_job"]
    blocked = _selection.run_blocked_reason() or grid_problem
    if _selection.selection_problem():
        st.error(blocked, icon=":material/block:")
    jobs_note = f" ({len(jobs)} runs)" if len(jobs) != len(selected) else ""
    if st.button(f"Run {len(selected)} scheme{'s' if len(selected) != 1 else ''}{jobs_note}", type="primary",
                 icon=":material/play_arrow:", key="optimize_run_button", disabled=bool(blocked), help=blocked):
        _selection.start_sweep(selected, overrides, recompute=recompute, budget_s=budget or None, where=where,
                            labels=_sweep_options.labels(jobs))
        st.rerun()  # draw the page again with the Run button disabled and the progress below

    if job is not None and job.running:
        st.subheader("Progress")
        live_progress_ui(job)
    elif job is not None:
        st.subheader("Last run")
        last_run_ui(job)


st.title("Optimize")
st.markdown(f"Model **{_selection.model_label()}** with dataset **{_selection.data_label()}**.")
st.page_link("pages/model_data.py", label="Change model or data", icon=":material/swap_horiz:")
# At the top, with the count: Run and the progress are on screen without scrolling past the schemes (a 1024×768
# projector shows little more than this). Drawn last, once the choices below are known.
run_area = st.container(border=True)

st.subheader("Schemes")
selected = schemes_ui()
overrides = settings_ui(selected)
grid, grid_problem = _sweep_options.grid_ui(selected)
overrides.update(grid)
where = _sweep_options.where_ui()
recompute = st.checkbox("Run again even when the store already has a result", key="optimize_recompute")
budget = st.number_input("Time budget per scheme (seconds, 0 for none)", min_value=0, max_value=86_400,
                         step=30, key="optimize_budget",  # its default is in _state
                         help="A scheme that runs longer is stopped and marked 'timeout'; the rest go on.")

with run_area:
    run_ui(selected, overrides, grid_problem, where, recompute, budget)
