"""Compare: tables and Plotly charts over any selection of stored runs."""

import time

import pandas as pd
import streamlit as st

from optlib.analysis import explain, failures, quality, tables, timing
from optlib.engine.store import Store
from optlib.views import charts
from pages import _compare_settings, _compare_targets, _results, _selection, _shared, _state
from pages._compare_backends import backend_filter_ui, both_backends_ui

_state.through_router(__file__)

SIZE_AXES = {"size_mb": "File size", "gzip_mb": "Gzipped size (download)"}
QUALITY_AXES = {"metric": "The task's metric", "fidelity_snr_db": "Fidelity: SNR (dB)",
                "fidelity_cosine": "Fidelity: cosine similarity", "fidelity_top1_agreement": "Fidelity: top-1 agreement"}


def chance_ui(view):
    """Warn when a baseline is no better than guessing: every delta against it would mislead."""
    for warning in explain.chance_baselines(view):
        st.warning(warning, icon=":material/casino:")


def explanations_ui(view, runs):
    """'Why is this slower?' and 'why didn't this shrink?' for the shown runs whose figures show it."""
    found = explain.explanations(view, runs)
    if not found:
        return
    slower = sorted({item["scheme"] for item in found if any(n.startswith("Why is this slower") for n in item["notes"])})
    larger = sorted({item["scheme"] for item in found if any(n.startswith("Why didn't") for n in item["notes"])})
    summary = "; ".join(part for part in (
        f"slower than float32: {', '.join(slower)}" if slower else "",
        f"no smaller on disk, only compressed: {', '.join(larger)}" if larger else "") if part)
    count = sum(len(item["notes"]) for item in found)
    with st.expander(f"Why is this slower? Why didn't this shrink? — {summary} ({count} "
                     f"note{'s' if count != 1 else ''})", icon=":material/lightbulb:"):
        st.caption("Read from the measured figures, each run against the float32 run of the same model and dataset.")
        for item in found:
            for note in item["notes"]:
                st.markdown(f"**{item['scheme']}** on {item['model']} (run #{item['id']}): {note}")


def history_ui(run_id):
    """Every run of the same model, data, scheme and settings: reruns that failed or timed out stay visible here."""
    history = Store(_results.store_path()).history(run_id)
    if len(history) < 2:
        return
    with st.expander(f"History: {len(history)} runs of this model, data, scheme and settings",
                     icon=":material/history:"):
        st.dataframe(pd.DataFrame([{
            "Run": r["id"], "Status": r["status"],
            "Finished": time.strftime("%Y-%m-%d %H:%M", time.localtime(r["finished_at"])) if r["finished_at"] else "",
            "Figure": quality.text(r["metrics"] or {}),
            "Reason (if not ok)": failures.sentence(r["error"]) if r["error"] else ""}
            for r in history]), hide_index=True, placeholder=_shared.GAP)


def run_details_ui(runs):
    """Pick one run; show its figures, its settings and the code that reproduces it."""
    labels = {int(row["id"]): _results.run_label(row) for _, row in runs.iterrows()}
    _shared.keep_choice("compare_run", list(labels))
    run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="compare_run")
    row = runs[runs["id"].eq(run_id)].iloc[0]
    history_ui(run_id)
    if row["status"] != "ok":
        _shared.failure_ui(row["error"] if isinstance(row["error"], str) else "no reason recorded",
                           lead=f"{row['scheme']} {row['status']}: ")
        return
    note = row.get("accuracy_note")  # a column of the frame: NaN for a run without one, never shown as "nan"
    st.caption(row["title"] + (f" — {note}" if isinstance(note, str) and note else ""))
    _results.results_table(runs[runs["id"].eq(run_id)])
    if isinstance(row.get("runtime"), str):
        st.caption(f"Latency {explain.fallback_note(row) or 'timed on ' + row['runtime']}.")
    if row.get("phases_s"):
        st.caption("Where its time went: " + timing.phases_text(row["phases_s"]) + " (starting the worker and "
                   "loading happen once per worker process, before its first job).")
    settings, code = st.columns([1, 2])
    settings.markdown("**Settings**")
    settings.json(row["settings"], expanded=True)
    if row["latency_runs"] == row["latency_runs"]:  # not NaN: the run recorded what its latency used
        settings.caption(f"The latency figure used {int(row['latency_runs']):,} timed invokes after "
                         f"{int(row['latency_warmup']):,} warm-up invokes: `runs` and `warmup` are minimums, "
                         "and timing also lasts at least 0.3 s (0.1 s of warm-up).")
    code.markdown("**Code that reproduces this result**")
    with code:
        _results.code_ui(run_id)


# Table 1's comparison (scheme, the metric and its change, size and its ratio, latency and its speed-up) fits a
# 1024 px window beside the sidebar under these short headers; the full names are in each header's tooltip.
TABLE1_SHORT = {"Top-1 accuracy (%)": "Top-1 %", "Δ top-1 vs float32 (points)": "Δ pts", "Value": "Value",
                "Δ vs float32": "Δ", "Size (MB)": "Size MB", "Smaller than float32 (×)": "Smaller",
                "Latency (ms)": "Latency ms", "Speed-up vs float32 (×)": "Faster", "Gzipped (MB)": "Gzip MB",
                "Gzipped smaller than float32 (×)": "Gzip smaller"}
TABLE1_COMPARISON = ("Scheme", "Metric", "Top-1 accuracy (%)", "Δ top-1 vs float32 (points)", "Value", "Δ vs float32",
                     "Size (MB)", "Smaller than float32 (×)", "Latency (ms)", "Speed-up vs float32 (×)")


def table1_ui(view):
    """Table 1, one table per model: the comparison's columns on screen at 1024 px, the rest (dataset, gzip, note)
    one click away."""
    table = tables.runs_table1(view)
    extras = [column for column in table.columns if column not in TABLE1_COMPARISON and column != "Model"]
    more = st.multiselect("More columns", extras, key="compare_table1_more", placeholder="Dataset, gzip, note",
                          help="The comparison's columns are always shown; add these beside them.")
    st.caption("Hover a header for its full name; Smaller and Faster are float32's size and latency over each run's.")
    for index, (model, rows) in enumerate(table.groupby("Model", sort=False)):
        datasets = rows["Dataset"].unique()
        several = ["Dataset"] if len(datasets) > 1 and "Dataset" not in more else []
        st.markdown(f"**{model}**" + (f" on {datasets[0]}" if len(datasets) == 1 else ""))
        shown = [*several, *(c for c in TABLE1_COMPARISON if c in rows), *more]
        _results.figures_table(rows, tables.RUNS_TABLE1_FORMATS, columns=shown, labels=TABLE1_SHORT,
                              key=f"compare_table1_table_{index}")


def start_on_the_current_model(runs):
    """The first time Compare is shown, it shows the current model's runs; other models are one click away."""
    current = _selection.model_name()
    if "compare_filter_model" not in st.session_state and current in set(runs["model"]):
        st.session_state["compare_filter_model"] = [current]


def other_models_note(runs, chosen_models):
    others = sorted(set(runs["model"]) - set(chosen_models)) if chosen_models else []
    if others:
        st.caption(f":material/add_circle: {len(others)} other model{'s' if len(others) != 1 else ''} in the store "
                   f"({', '.join(others[:4])}{' …' if len(others) > 4 else ''}): add them under Models, or clear "
                   "it to see all.")


st.title("Compare")
runs = _results.stored_runs_or_stop("No stored results yet. Run a few schemes first.")

start_on_the_current_model(runs)
chosen_models, chosen_datasets, chosen_schemes = _results.filters_ui(runs, "compare")
other_models_note(runs, chosen_models)
chosen = _results.filter_runs(runs, chosen_models, chosen_datasets, chosen_schemes)
view = backend_filter_ui(chosen)
view = _compare_targets.runs_on_ui(view)  # "runs on: a microcontroller with R kB RAM and F kB flash"
everything = _results.filter_runs(runs, chosen_models, chosen_datasets, chosen_schemes, ok_only=False)
if view.empty:
    st.info("No finished run matches these filters. Clear a filter, or run schemes on Optimize.",
            icon=":material/info:")
    st.stop()
st.caption(f"{len(view)} finished run{'s' if len(view) != 1 else ''} shown. Deltas compare each run with the "
           "float32 baseline of the same model and dataset; latency is the median of timed single-input "
           "invokes on this machine.")
chance_ui(view)

st.subheader("Accuracy, latency and size per model and scheme")
st.caption("In the style of Table 1 of the TensorFlow Lite optimization guide.")
table1_ui(view)
explanations_ui(view, runs)

st.subheader("Trade-offs")
axes_left, axes_right = st.columns(2)
axes_left.radio("Size axis", list(SIZE_AXES), format_func=SIZE_AXES.get, key="compare_size_axis", horizontal=True)
quality_axis = axes_right.radio("Quality axis", list(QUALITY_AXES), format_func=QUALITY_AXES.get, key="compare_quality_axis",
                           horizontal=True, help="The task's metric (top-1, MAE, ...) against the labels, or "
                                                 "how closely each run follows the Keras float model on the same "
                                                 "inputs (every model has this, labels or not).")
y_axis = charts.quality_column(view) if quality_axis == "metric" else quality_axis
# One chart per row: side by side, a 1024 px window leaves each too narrow for its title, legend and ticks.
st.plotly_chart(charts.scatter(view, x=st.session_state["compare_size_axis"], y=y_axis), key="compare_size_chart")
st.plotly_chart(charts.scatter(view, x="latency_ms", y=y_axis), key="compare_latency_chart")
st.caption("One panel per model, each with its own axes. The dashed line joins a model's Pareto front: its runs "
           "that no other run of it beats on both axes. Runs on one spot are drawn as rings; hover for their names.")
_compare_settings.against_setting_ui(view)

st.subheader("Size and latency")
st.plotly_chart(charts.size_bars(view), key="compare_size_bars_chart")
st.plotly_chart(charts.latency_bars(view), key="compare_latency_bars_chart")

st.subheader("Accuracy with float32, int8 and int16 activations")
st.caption("In the style of Table 2 of the guide: the float32 baseline against full-integer int8 and "
           "int16-activation (int16x8) models.")
_results.figures_table(tables.runs_table2(view), tables.RUNS_TABLE2_FORMATS)
st.plotly_chart(charts.table2_figure(view), key="compare_table2_chart")

# Before the backend and "runs on" filters: the matrix explains why a run does not fit, and the
# side-by-side view needs both backends.
_compare_targets.matrix_ui(chosen)
both_backends_ui(chosen)

st.subheader("Each run")
failed = everything[~everything["status"].eq("ok")]
if not failed.empty:
    with st.expander(f"{len(failed)} run{'s' if len(failed) != 1 else ''} did not finish", icon=":material/error:"):
        _results.results_table(failed, ["id", "model", "dataset", "scheme", "status", "error"])
run_details_ui(everything)
