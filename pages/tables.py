"""Table 1 & 2: the guide's two comparison tables, published rows beside this machine's own."""

import re

import pandas as pd
import streamlit as st

from optlib.analysis import failures, reference, report, tables, timing
from optlib.engine import sweep
from optlib.engine.store import Store
from optlib.errors import InputError
from optlib.inputs import models
from optlib.units import format_bytes
from optlib.views import table_charts
from pages import _results, _selection, _shared, _state, _workspace
from pages._jobs import SweepJob, Table1Job
from pages._state import TABLE1_DATA

_state.through_router(__file__)

TEXT_COLUMNS = {  # how the comparison columns show (all cells are text: published ones exactly as printed)
    "Model": st.column_config.TextColumn("Model", pinned=True),
    "Source": st.column_config.TextColumn("Source", width=270),
    "Size reduction (x)": st.column_config.TextColumn("Size reduction (x)", help="float32 size ÷ int8 size"),
    "FP32/INT8 latency": st.column_config.TextColumn("FP32/INT8 latency",
                                                     help="speed-up of int8: float32 latency ÷ int8 latency"),
    "FP32/QAT latency": st.column_config.TextColumn("FP32/QAT latency", help="float32 latency ÷ QAT latency"),
    "(INT8-FP32)/FP32 accuracy": st.column_config.TextColumn("(INT8-FP32)/FP32 accuracy",
                                                             help="relative accuracy change of int8"),
    "(INT8-FP32)/FP32": st.column_config.TextColumn("(INT8-FP32)/FP32", help="relative change of int8"),
    "(INT16-FP32)/FP32": st.column_config.TextColumn("(INT16-FP32)/FP32", help="relative change of int16x8"),
    "Note": st.column_config.TextColumn("Note", width="large"),
}


def keep_choices():
    """Remember the reproduction choices drawn in this run (see _state.init_state)."""
    st.session_state["tables_kept"] = {key: st.session_state[key] for key in st.session_state["tables_kept"]}


def comparison_ui(table, key):
    """The comparison table as text cells: published figures exactly as printed, this machine's highlighted."""
    shown = tables.display(table)
    local = ~shown["Source"].map(lambda s: s.startswith("Published"))
    styled = shown.style.apply(lambda row: ["background-color: #fff3e0" if local[row.name] else ""] * len(row),
                               axis=1)
    st.dataframe(styled, hide_index=True, key=key, placeholder=_shared.GAP,
                 column_config={c: TEXT_COLUMNS[c] for c in shown.columns if c in TEXT_COLUMNS})


def downloads_ui(table, stem, key):
    """CSV and Markdown downloads of a comparison table, as shown."""
    row = st.container(horizontal=True)
    row.download_button("Download CSV", tables.to_csv(table), file_name=f"{stem}.csv", mime="text/csv",
                         icon=":material/download:", on_click="ignore", key=f"{key}_csv_download")
    row.download_button("Download Markdown", tables.to_markdown(table), file_name=f"{stem}.md",
                        mime="text/markdown", icon=":material/download:", on_click="ignore",
                        key=f"{key}_md_download")


# --- Table 1 -------------------------------------------------------------------------

def reproduce_choices_ui():
    """Architectures, QAT and data for a reproduction; return (models, include_qat, data reference)."""
    titles = {name: models.ZOO[name].title for name in tables.TABLE1_MODELS}
    chosen = st.multiselect("Architectures", list(tables.TABLE1_MODELS), format_func=lambda n: f"{titles[n]} ({n})",
                            key="tables_models", placeholder="Choose at least one architecture")
    include_qat = st.checkbox("Include quantization-aware training (QAT)", key="tables_qat",
                              help="Fine-tunes each model for one epoch on 256 samples before converting; the "
                                   "estimate below counts it when this machine has fine-tuned that model before.")
    if _selection.data_ref() == TABLE1_DATA:
        st.caption("Data: the built-in digits calibrate int8 and fine-tune QAT. Accuracy comparable with the "
                   "guide needs ImageNet weights and ImageNet images: choose a folder of them on Model & data, "
                   "and it is offered here.")
        return chosen, include_qat, TABLE1_DATA
    options = [TABLE1_DATA, _selection.data_ref()]
    _shared.keep_choice("tables_data", options)
    labels = {TABLE1_DATA: "Built-in digits (size and latency only)",
              _selection.data_ref(): f"Current dataset: {_selection.data_label()}"}
    data_ref = st.radio("Data for calibration, fine-tuning and accuracy", options, format_func=labels.get,
                        key="tables_data", horizontal=True,
                        help="Accuracy comparable with the guide needs ImageNet weights and ImageNet "
                             "evaluation images.")
    return chosen, include_qat, data_ref


def reproduce_ui():
    """Choices, an honest time estimate and the button that starts a reproduction in the background."""
    with st.container(border=True):
        st.markdown("**Reproduce Table 1 on this machine** — float32, post-training int8 and (optionally) QAT "
                    "for each architecture, measured on the LiteRT interpreter with one thread.")
        chosen, include_qat, data_ref = reproduce_choices_ui()
        keep_choices()
        if not chosen:
            st.info("Choose at least one architecture.", icon=":material/info:")
            return
        try:
            jobs = tables.plan_table1(chosen, data_ref, include_qat)
        except InputError as problem:
            st.error(f"{problem} Choose another dataset on the Model & data page.", icon=":material/error:")
            return
        store = Store(_results.store_path())
        todo = [(model, scheme) for model, scheme, key in jobs if not store.lookup(key)]
        seconds, unknown = tables.expected_seconds(todo, store)
        notes = [f"{len(jobs)} conversions ({len(chosen)} architecture{'s' if len(chosen) != 1 else ''} × "
                 f"{len(tables.table1_schemes(include_qat))} schemes)"]
        if len(todo) < len(jobs):
            notes.append(f"{len(jobs) - len(todo)} already in the store (served at once)")
        if len(unknown) < len(todo):
            notes.append(f"{len(todo) - len(unknown)} of them took **{timing.duration(seconds)}** in this machine's "
                         "earlier runs of the same architectures and schemes, plus loading each model")
        if unknown:
            notes.append(f"no earlier run on this machine to estimate {', '.join(f'{m} {s}' for m, s in unknown)} "
                         "from")
        st.markdown("; ".join(notes) + ".")
        untrained = [name for name in chosen if not tables.weights_found(name)]
        if untrained:
            st.caption(f":material/info: No ImageNet weights in the Keras cache (`{models.keras_cache_dir()}`) for "
                       f"{', '.join(untrained)}: they run untrained, so their rows give **size and latency only** "
                       "(the Note column says why the accuracy cells are empty).")
        running = _selection.busy()
        st.button(f"Reproduce Table 1 for {len(chosen)} architecture{'s' if len(chosen) != 1 else ''}",
                  type="primary", icon=":material/play_arrow:", key="tables_run_button", disabled=bool(running),
                  on_click=start_table1, args=(chosen, include_qat, data_ref),
                  help="Wait for the running sweep to finish: two at once would share the cores and skew "
                       "latency." if running else "Runs in the background: look at other pages meanwhile.")


def start_table1(chosen, include_qat, data_ref):
    """Button callback: start a reproduction in the background."""
    st.session_state["tables_job"] = Table1Job(chosen, include_qat, data=data_ref, store=_results.store_path()).start()


def table1_progress_ui(job):
    """The progress bar and one line per architecture and scheme."""
    fraction, message, states = job.state()
    ended = "Did not finish: see the message below" if job.error else "Done"
    st.progress(fraction if job.running or job.error else 1.0, text=message if job.running else ended)
    with st.container(border=True):
        for model in job.models:
            lines = []
            for scheme in job.schemes:
                stage, text, row = states.get((model, scheme), ("waiting", "", None))
                lines.append(_results.status_line(scheme, stage, row_summary(row) if row else text))
            st.markdown(f"**{models.ZOO[model].title}** (`{model}`)  \n" + "  \n".join(lines))


def row_summary(row):
    """What a finished row says in the live status: size and latency, or why it failed."""
    if row.get("status") != "ok":
        return failures.sentence(row["error"]) if row.get("error") else "no reason given"
    latency = row.get("latency_ms") or {}
    median = latency.get("median") if isinstance(latency, dict) else latency
    return f"{format_bytes(row.get('size_bytes'))} · {median:.2f} ms" if median else "done"


@st.fragment(run_every=1.0)
def live_table1_progress_ui(job):
    """Redrawn every second while the reproduction runs; the whole page is redrawn once when it ends."""
    table1_progress_ui(job)
    if not job.running:
        st.rerun()


def table1_outcome_ui(job):
    """What the last reproduction of this session did: done, or which schemes failed and why."""
    if job.error:
        st.error(f"{job.error} Check the architecture and data choices, then run again.", icon=":material/error:")
        return
    rows = job.rows()
    failed = [row for row in rows if row["status"] != "ok"]
    if failed:
        st.warning(f"{len(rows) - len(failed)} of {len(rows)} conversions finished. Failed: "
                   + "; ".join(f"{row['model']} {row['scheme']} ({row['error']})" for row in failed),
                   icon=":material/warning:")
    else:
        st.success(f"All {len(rows)} conversions finished: this machine's rows are in the table below "
                   "(and on Compare).", icon=":material/check_circle:")


def ratios_ui(table):
    """For each architecture measured here: its ratios beside the published ones."""
    local = table[~table["Source"].eq(tables.PUBLISHED)]
    published = table[table["Source"].eq(tables.PUBLISHED)].set_index("zoo_model")
    shown = tables.display(table).set_index(table.index)
    for index, row in local.iterrows():
        base = published.loc[row["zoo_model"]]
        cells = shown.loc[index]
        with st.container(border=True, key=f"tables_ratios_{row['zoo_model']}"):
            st.markdown(f"**{row['Model']}** — {row['Source']} against {tables.PUBLISHED}")
            st.caption(f"Size {cells['Size original (MB)']} MB (float32) → {cells['Size optimized (MB)'] or '—'} "
                       f"MB (int8); median latency {cells['Latency original (ms)']} ms → "
                       f"{cells['Latency PTQ (ms)'] or '—'} ms")
            columns = st.columns(3)
            for column, (name, label, formula, spec) in zip(columns, (
                    ("Size reduction (x)", "Size reduction", "float32 size ÷ int8 size", "{:.2f}×"),
                    ("FP32/INT8 latency", "Speed-up", "float32 latency ÷ int8 latency", "{:.2f}×"),
                    ("(INT8-FP32)/FP32 accuracy", "Accuracy change", "(int8 − float32) ÷ float32 top-1",
                     "{:+.1%}"))):
                mine = row[name]  # short labels and values: a third of a 1024 px page cuts longer ones
                value = spec.format(mine) if pd.notna(mine) else _shared.GAP
                column.metric(label, value, f"published {spec.format(base[name])}", delta_color="off",
                              delta_arrow="off", border=False,
                              help=formula + ("" if pd.notna(mine) else "; not measured here, see the note"))
            if row["Note"]:
                st.caption(f"Note: {row['Note']}.")


def table1_section(runs):
    st.subheader("Table 1 · Benefits of model quantization for select CNN models")
    st.caption(f"Published rows: {reference.DEVICE}, exactly as printed in the {reference.DOCUMENT}. Rows from "
               "this machine are highlighted; they come from the store, so Compare shows the same figures.")
    reproduce_ui()
    job = st.session_state["tables_job"]
    if job is not None and job.running:
        st.markdown("**Progress**")
        live_table1_progress_ui(job)
    elif job is not None:
        table1_outcome_ui(job)
    table = tables.table1_comparison(runs)
    comparison_ui(table, "tables_t1_table")
    downloads_ui(table, "table1-comparison", "tables_t1")
    ratios_ui(table)
    st.plotly_chart(table_charts.table1_figure(table), key="tables_t1_chart")
    st.plotly_chart(table_charts.table1_ratio_figure(table), key="tables_t1_ratio_chart")


# --- Table 2 -------------------------------------------------------------------------

def start_table2(missing):
    """Button callback: run the missing Table 2 schemes on the current model and data in the background."""
    st.session_state["tables_t2_job"] = SweepJob(
        model_ref=_selection.model_ref(), data_ref=_selection.data_ref(), selection=",".join(missing), overrides={},
        store=_results.store_path(), recompute=False, trusted=_selection.trusted(), task=_selection.task(),
        workspace=_workspace.token()).start()


def table2_progress_ui(job):
    fraction, message, states = job.state()
    st.progress(*(job.ended() if not job.running else (fraction, message)))
    for name in job.selected:
        stage, text, row = states.get(name, ("waiting", "", None))
        said = failures.sentence(row["error"]) if row and row.get("error") else "done"
        st.markdown(_results.status_line(name, stage, said if row else text))


@st.fragment(run_every=1.0)
def live_table2_progress_ui(job):
    table2_progress_ui(job)
    if not job.running:
        st.rerun()


def table2_run_ui(runs, model_name, data_name, trained):
    """Say which of float32, int8 and int16x8 are missing for the current model; offer to run them."""
    ok = runs[runs["status"].eq("ok") & runs["model"].eq(model_name) & runs["dataset"].eq(data_name)]
    missing = [scheme for scheme in tables.TABLE2_SCHEMES if scheme not in set(ok["scheme"])]
    job = st.session_state["tables_t2_job"]
    if job is not None and job.running:
        live_table2_progress_ui(job)
        return
    if job is not None and job.error:
        st.error(f"{job.error} Fix the model or data on the Model & data page, then run again.",
                 icon=":material/error:")
    elif job is not None:
        failed = [row for row in job.result["results"] if row["status"] != "ok"]
        for row in failed:
            st.warning(f"{row['scheme']} failed on {job.result['model']}: {row['error']}", icon=":material/warning:")
    if not trained:
        st.info(f"**{model_name}** has no trained weights here (no ImageNet weights found): its runs measure size "
                "and latency only, so there is no accuracy to compare. Choose a trained model on Model & data.",
                icon=":material/info:")
        return
    if not missing:
        st.caption(":material/check_circle: float32, int8 and int16x8 results of this model are in the store.")
        return
    tried = set(runs[runs["model"].eq(model_name) & runs["dataset"].eq(data_name)]["scheme"])
    retry = [scheme for scheme in missing if scheme in tried]
    blocked = _selection.run_blocked_reason()
    st.button(f"Run {', '.join(missing)} on {model_name}", type="primary", icon=":material/play_arrow:",
              key="tables_t2_run_button", on_click=start_table2, args=(missing,), disabled=bool(blocked),
              help=blocked or "Runs in the background with default settings; the results land in the store.")
    if retry:
        st.caption(f"{', '.join(retry)} failed before (the Note says why); running again gives the same result "
                   "unless the model or data changed.")


def table2_section(runs):
    st.subheader("Table 2 · Benefits of model quantization with int16 activations")
    st.markdown(f"For the current model **{_selection.model_label()}** with dataset **{_selection.data_label()}**: "
                "accuracy with float32 activations (`float32`), int8 activations (`int8`) and int16 activations "
                "with int8 weights (`int16x8`), below the published rows.")
    st.page_link("pages/model_data.py", label="Change model or data", icon=":material/swap_horiz:")
    try:
        inputs, _ = sweep.plan(_selection.model_ref(), _selection.data_ref(), ",".join(tables.TABLE2_SCHEMES),
                              trusted=_selection.trusted())
        model_src, data_src = inputs.model, inputs.data
    except InputError as problem:
        st.error(f"{problem} Choose another model or dataset on the Model & data page.", icon=":material/error:")
        return
    runs = report.of_files(runs, model_src, data_src)  # not another file that has the same name
    table2_run_ui(runs, model_src.name, data_src.name, model_src.trained)
    table = tables.table2_comparison(runs, model_src.name, data_src.name)
    comparison_ui(table, "tables_t2_table")
    downloads_ui(table, f"table2-{re.sub(r'[^A-Za-z0-9_.-]+', '_', model_src.name)}-comparison", "tables_t2")
    st.plotly_chart(table_charts.table2_figure(table), key="tables_t2_chart")


st.title("Table 1 & 2")
st.markdown("The two comparison tables of the TensorFlow Lite model-optimization guide, with the **published "
            "figures as labelled reference rows** and, next to them, the same comparison **measured on this "
            "machine**. Absolute latencies differ between a Pixel 2 and this computer; the ratios — size "
            "reduction, speed-up, accuracy change — are what compare across machines.")
_state.init_state("tables")
stored = _results.stored_runs()
table1_section(stored)
st.divider()
table2_section(stored)
