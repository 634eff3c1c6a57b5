"""Layer insight & search: which layers lose accuracy in int8, keep them in float, search within a loss you accept."""

from pathlib import Path

import numpy as np
import streamlit as st

from optlib.analysis import explain, insight, quality, report, search
from optlib.analysis.insight import LAYER_SCHEMES, newest_runs
from optlib.engine import schemes
from optlib.engine.layers import weight_values, worst_layers
from optlib.engine.store import Store, result_row
from optlib.errors import InputError
from optlib.units import format_bytes
from optlib.views import insight_charts as charts
from pages import _results, _selection, _shared, _state, _workspace
from pages._insight_validation import validation_ui
from pages._jobs import LayerJob, SearchJob, SweepJob

_state.through_router(__file__)

OBJECTIVES = {"size": "Smallest file", "latency": "Fastest", "mix": "Half size, half latency"}
ORDERS = {"worst": "Largest first", "graph": "Layer sequence"}
AXES = {"size": "Size", "latency": "Latency"}
PRUNED = tuple(scheme.name for scheme in schemes.list_schemes(technique="prune", variants=True))
STORED = (*LAYER_SCHEMES, "cluster", *PRUNED, "int8_selective")
COMPARED = ("id", "scheme", "status", "accuracy", "accuracy_delta", "metric_name", "metric_value", "size_mb", "size_ratio",
            "latency_ms", "speedup", "error")
DEBUGGER_FORMATS = {"Mean squared error": "%.3e", "Max abs error": "%.4g", "Scale": "%.4g", "RMSE / scale": "%.3f",
                    "Mean error": "%.3e", "Std dev": "%.3e"}
TRAIL_FORMATS = {"Top-1 (%)": "%.2f", "Loss vs float32 (%)": "%.2f", "Size (kB)": "%.1f", "Latency (ms)": "%.4f"}


@st.cache_resource(show_spinner=False, max_entries=8)
def kernels_of(path, mtime):
    """Dequantized kernels of a .tflite file, read once (``mtime`` in the key: a new file reads anew)."""
    return weight_values(path)


def about_current(job):
    """True if a job (a page job or a sweep) is about the model and data selected now."""
    if job is None:
        return False
    refs = (job.model_ref, job.data_ref) if hasattr(job, "model_ref") else \
        (str(job.arguments["model_ref"]), str(job.arguments["data_ref"]))
    return refs == (str(_selection.model_ref()), str(_selection.data_ref()))


@st.fragment(run_every=1.0)
def live_ui(job, draw):
    """Redrawn every second while a job runs; the whole page is redrawn once when it ends."""
    draw(job)
    if not job.running:
        st.rerun()


def layer_progress_ui(job):
    fraction, message = job.state()
    st.progress(fraction, text=message)


def sweep_progress_ui(job):
    fraction, message, _ = job.state()
    st.progress(fraction, text=message)


def search_progress_ui(job):
    fraction, message, finished = job.state()
    st.progress(fraction, text=message)
    for number, (name, stage, row) in enumerate(finished):
        what = "baseline" if number == 0 else f"candidate {number}"
        line = quality.text(row) if row and quality.text(row) else ((row or {}).get("error") or "")
        st.markdown(_results.status_line(name, stage, f"{what}; {line}" if line else what))


def explanations_ui(df, pool=None):
    """'Why is this slower?' and 'why didn't this shrink?' for the runs of ``df`` whose figures show it."""
    for item in explain.explanations(df, pool):
        for note in item["notes"]:
            st.info(f"**{item['scheme']}** (run #{item['id']}): {note}", icon=":material/lightbulb:")


def layer_choice(layers, name):
    row = next((r for r in layers if r["layer"] == name), None)
    if row is None:
        return charts.short_name(name)
    return f"{charts.layer_label(row)} · {row['op']} · int8 error {row['int8_error']:.3g}"


# --- 1. Layers -------------------------------------------------------------------------------

def debugger_ui(result):
    """TensorFlow Lite's QuantizationDebugger metrics for int8: a chart and the full table."""
    st.markdown("**TensorFlow Lite QuantizationDebugger (int8)** — its per-layer statistics of the int8 model "
                "against float on the same inputs.")
    if result["debugger_problem"]:
        st.warning(f"The QuantizationDebugger could not run on this model: {result['debugger_problem']}. "
                   "The channel errors above do not depend on it.", icon=":material/warning:")
        return
    left, right = st.columns([2, 1])
    metric = left.selectbox("Metric", list(charts.DEBUGGER_METRICS), format_func=charts.DEBUGGER_METRICS.get,
                            key="insight_debug_metric")
    order = right.radio("Order", list(ORDERS), format_func=ORDERS.get, key="insight_debug_order", horizontal=True)
    st.plotly_chart(charts.debugger_chart(result["debugger"], metric, worst_first=order == "worst"),
                    key="insight_debug_chart")
    st.caption("RMSE / scale is the error in quantization steps: about 0.29 (1/√12) is pure rounding; far more "
               "means the layer's range is badly served by one int8 scale.")
    with st.expander("Every metric of every layer (table)", icon=":material/table:"):
        table = charts.debugger_table(result["debugger"], by=metric)
        st.dataframe(table, hide_index=True, placeholder=_shared.GAP, column_config={
            column: st.column_config.NumberColumn(column, format=fmt) for column, fmt in DEBUGGER_FORMATS.items()})


SIDE_BY_SIDE = 600  # px: each layer chart's width, wide enough for its title, legend and ticks


def layers_ui(result):
    """The outcome of a layer comparison: the ranking, int8 against int16x8, and the debugger's metrics."""
    runs = result["runs"]
    used = ", ".join(f"{name} #{runs[name]['id']}" for name in LAYER_SCHEMES if runs[name].get("id") is not None)
    st.caption(f"Compared on {result['samples']} inputs of **{_selection.data_label()}**; runs used: {used}.")
    if result["int16_problem"]:
        st.warning(f"Only int8 is compared with float32 here. {result['int16_problem']}", icon=":material/warning:")
    # Side by side where both fit at SIDE_BY_SIDE px, one above the other below that (a 1024 px window): two
    # equal columns there cut the charts' titles ("worst firs") and put the legend over them.
    pair = st.container(horizontal=True, gap="medium")
    kept = st.session_state.get("insight_keep") or []
    pair.plotly_chart(charts.error_ranking(result["layers"], "int8", kept=kept), key="insight_ranking_chart",
                      width=SIDE_BY_SIDE)
    pair.plotly_chart(charts.error_sequence(result["layers"], result["labels"], result["int16_problem"]),
                      key="insight_sequence_chart", width=SIDE_BY_SIDE)
    debugger_ui(result)


# --- 2. Weights ------------------------------------------------------------------------------

def stored_kernels(stored):
    """{label: dequantized kernels} of the stored float32, int8 and cluster models (unreadable ones said)."""
    versions = {}
    for label in ("float32", "int8", "cluster"):
        if label in stored:
            path = stored[label]["tflite_path"]
            try:
                versions[label] = kernels_of(path, Path(path).stat().st_mtime_ns)
            except (OSError, ValueError, RuntimeError) as problem:
                st.warning(f"The weights of {label} run #{stored[label]['id']} cannot be read: {problem}",
                           icon=":material/warning:")
    return versions


def weights_ui(stored):
    """Histogram of one kernel as float32, int8 and (if run) cluster store it."""
    if "float32" not in stored:
        st.info("Compare layers first (or run float32 on Optimize): the weight views read the stored models.",
                icon=":material/info:")
        return
    versions = stored_kernels(stored)
    if "float32" not in versions:
        return
    names = [name for name, _, _ in versions["float32"]]
    if not names:
        st.info("This model has no convolution or dense kernels to show.", icon=":material/info:")
        return
    shapes = {name: (op, values.shape) for name, op, values in versions["float32"]}
    _shared.keep_choice("insight_kernel", names)
    largest = max(names, key=lambda n: int(np.prod(shapes[n][1])))
    start = {} if "insight_kernel" in st.session_state else {"index": names.index(largest)}  # the most weights
    kernel = st.selectbox("Kernel", names, key="insight_kernel", **start, format_func=lambda n: (
        f"{charts.short_name(n)} · {shapes[n][0]} · {' × '.join(map(str, shapes[n][1]))}"))
    chosen = {}
    for label, kernels in versions.items():
        by_name = {name: values for name, _, values in kernels}
        if kernel in by_name:
            chosen[label] = by_name[kernel]
        elif len(kernels) == len(names):  # same layers under other names (e.g. after clustering)
            chosen[label] = kernels[names.index(kernel)][2]
    st.plotly_chart(charts.weight_histogram(chosen, kernel), key="insight_weights_chart")
    runs = ", ".join(f"{label} #{stored[label]['id']}" for label in versions)
    missing = "" if "cluster" in versions else " Run **cluster** on Optimize to add its shared values here."
    st.caption(f"Dequantized weights as stored in each model ({runs}).{missing}")


def sparsity_ui(stored):
    """The share of zero weights each layer reached in the newest pruned run."""
    pruned = [stored[name] for name in PRUNED if name in stored]
    if not pruned:
        st.info("No pruning run of this model yet: run **prune** on Optimize to see the sparsity each layer reached.",
                icon=":material/info:")
        return
    row = max(pruned, key=lambda r: r["id"])
    st.plotly_chart(charts.sparsity_bars(row.get("kernels") or [], (row.get("settings") or {}).get("sparsity"),
                                         row["scheme"]), key="insight_sparsity_chart")
    st.caption(f"Measured in the stored model of run #{row['id']} ({row['scheme']}): pruning aims at a target, "
               "what each layer reached is what counts.")


# --- 3. Selective quantization --------------------------------------------------------------

def suggest(ranked):
    """Button callback: choose the worst N layers (N from its number input)."""
    st.session_state["insight_keep"] = ranked[:int(st.session_state["insight_worst_n"])]


def suggest_once(layer_job):
    """Suggest the worst layers once per comparison (the person's choice stands until the next one); none when
    int8 lost nothing against float32."""
    if st.session_state.get("insight_keep_for") != id(layer_job):
        st.session_state["insight_keep_for"] = id(layer_job)
        layers = layer_job.result["layers"]
        if insight.int8_lost_nothing(layer_job.result["runs"]):
            st.session_state["insight_keep"] = []
        else:
            suggest(worst_layers(layers, "int8", len(layers)))


def keep_ui(layer_job):
    """Pick the layers to keep in float (the worst one is suggested); return the chosen names."""
    layers, runs = layer_job.result["layers"], layer_job.result["runs"]
    ranked = worst_layers(layers, "int8", len(layers))
    st.session_state["insight_keep"] = [n for n in st.session_state.get("insight_keep", []) if n in ranked]
    if insight.int8_lost_nothing(runs):
        st.success(f"int8 lost nothing against float32 on this data ({quality.text(runs['int8'])} against "
                   f"{quality.text(runs['float32'])}): keeping layers in float is not needed, so none is chosen. "
                   "Choose some only to see what it costs in size and speed.", icon=":material/check_circle:")
    count, button = st.columns([1, 3], vertical_alignment="bottom")
    count.number_input("Worst N layers", min_value=1, max_value=max(1, len(ranked)), step=1, key="insight_worst_n")
    button.button("Suggest the worst N", key="insight_suggest_button", on_click=suggest, args=(ranked,),
                  icon=":material/auto_fix_high:")
    return st.multiselect("Layers to keep in float", ranked, key="insight_keep",
                          format_func=lambda name: layer_choice(layers, name),
                          help="The layers that read a kept layer's output stay in float too; otherwise they "
                               "would quantize it again.")


def before_after_ui(stored, row):
    """float32, int8 and the new int8_selective run side by side, with explanations and code."""
    if row["status"] != "ok":
        st.error(f"int8_selective {row['status']}: {row.get('error') or 'no reason recorded'}",
                 icon=":material/error:")
        return
    df = report.frame([stored[name] for name in ("float32", "int8") if name in stored] + [row])
    st.plotly_chart(charts.before_after(df), key="insight_before_after_chart")
    _results.results_table(df, COMPARED)
    selective = (row.get("recipe") or {}).get("selective") or {}
    kept = [charts.short_name(name) for name in selective.get("kept_float", [])]
    extra = [charts.short_name(name) for name in selective.get("denylisted_nodes", [])]
    extra = [name for name in extra if name not in kept]
    if kept:
        st.caption(f"Run #{row['id']} kept in float: **{', '.join(kept)}**"
                   + (f", and the layers reading {'them' if len(kept) > 1 else 'it'}: {', '.join(extra)}"
                      if extra else "")
                   + ". It is stored like any other run: Compare and Export show it too.")
    explanations_ui(df)
    with st.expander("Code for int8_selective", icon=":material/code:"):
        _results.code_ui(row["id"])
    st.page_link("pages/compare.py", label="Compare it with every other run", icon=":material/monitoring:")


# --- 4. Search -------------------------------------------------------------------------------

def search_settings_ui():
    """Draw the search settings; return (max loss as a fraction, objective, trials, budget in seconds)."""
    loss, objective_col, trials_col, budget_col = st.columns(4)
    max_loss = loss.number_input("Accepted loss (% of float32's metric)", min_value=0.0, max_value=50.0,
                                 step=0.5, format="%.2f", key="insight_max_loss")
    objective = objective_col.selectbox("Objective", list(OBJECTIVES), format_func=OBJECTIVES.get,
                                        key="insight_objective")
    order = search.order(objective)
    st.session_state["insight_trials"] = min(int(st.session_state["insight_trials"]), len(order))
    trials = trials_col.number_input("Trials", min_value=1, max_value=len(order), step=1, key="insight_trials",
                                     help="Most candidates to try; the float32 baseline is not counted.")
    budget = budget_col.number_input("Time budget (s, 0 for none)", min_value=0, max_value=86_400, step=60,
                                     key="insight_budget", help="No new candidate starts after this time.")
    tried = ", ".join(charts.candidate_label({"scheme": s, "settings": extra}) for s, extra in order[:trials])
    st.caption(f"Tried in this order: {tried}. Each candidate is an ordinary run with default settings, served "
               "from the store when it exists; training-time candidates fine-tune the model first (slower).")
    return max_loss / 100.0, objective, int(trials), int(budget)


def _metric_cell(best, base):
    """(label, value, delta) of the chosen candidate's metric: top-1 in percent and points, MAE in its unit."""
    name = quality.short_name(base)
    value, reference = quality.value(best), quality.value(base)
    if quality.is_percent(base):
        return name.capitalize(), f"{value:.2%}", f"{100 * (value - reference):+.2f} points vs float32"
    return f"{name} ({quality.direction(base)})", f"{value:.4g}", f"{value - reference:+.3g} vs float32"


def search_result_ui(job):
    """The best candidate, whether it met the target, the trail on a Pareto chart and as a table."""
    if job.error:
        st.error(f"{job.error} Choose another model or dataset on the Model & data page.", icon=":material/error:")
        return
    result = job.result
    best, base = result["best"], result["baseline"]
    if result["met"]:
        st.success(result["explanation"], icon=":material/check_circle:")
    else:
        st.warning(result["explanation"], icon=":material/warning:")
    if best:
        cells = st.columns(4)
        cells[0].metric("Best candidate" if result["met"] else "Closest candidate", charts.candidate_label(best))
        cells[1].metric(*_metric_cell(best, base), delta_color="normal" if quality.higher_is_better(base) else "inverse")
        cells[2].metric("Size", format_bytes(best["size_bytes"]),
                        f"{base['size_bytes'] / best['size_bytes']:.2f}× smaller", delta_color="off")
        cells[3].metric("Latency", f"{best['latency_ms']:.4g} ms",
                        f"{base['latency_ms'] / best['latency_ms']:.2f}× float32's speed", delta_color="off")
    default_axis = "latency" if result["target"]["objective"] == "latency" else "size"
    st.session_state["insight_search_axis"] = st.session_state.get("insight_search_axis", default_axis)
    axis = st.radio("Chart against", list(AXES), format_func=AXES.get, key="insight_search_axis", horizontal=True)
    st.plotly_chart(charts.search_chart(result, axis), key="insight_search_chart")
    trail = charts.trail_frame(result)
    st.dataframe(trail, hide_index=True, placeholder=_shared.GAP, column_config={
        "Verdict": st.column_config.TextColumn("Verdict", width="large"),
        "Run": st.column_config.NumberColumn("Run", format="%d"),
        **{column: st.column_config.NumberColumn(column, format=fmt) for column, fmt in TRAIL_FORMATS.items()},
        **{column: st.column_config.NumberColumn(column, format="%.4g")  # the task's metric when it is not top-1
           for column in trail.columns if "is better)" in column}})
    if best and best.get("id") is not None:
        store = Store(_results.store_path())
        rows = [result_row(r) for r in (store.get(base["id"]), store.get(best["id"])) if r]
        explanations_ui(report.frame(rows))
        with st.expander(f"Code for {charts.candidate_label(best)}", icon=":material/code:"):
            _results.code_ui(best["id"])


# --- The page ----------------------------------------------------------------------------------

_state.init_state("insight")  # this page's values, set again in every run

st.title("Layer insight & search")
st.markdown(f"Model **{_selection.model_label()}** with dataset **{_selection.data_label()}**. When int8 loses "
            "too much accuracy: see which layers cause it, keep just those in float with one click, or let the search "
            "find the smallest or fastest model within the accuracy loss you accept.")
st.page_link("pages/model_data.py", label="Change model or data", icon=":material/swap_horiz:")
try:
    stored = newest_runs(_selection.model_ref(), _selection.data_ref(), STORED, _results.store_path())
except InputError as problem:
    st.error(f"{problem} Choose another model or dataset on the Model & data page.", icon=":material/error:")
    st.stop()

st.subheader("Which layers lose accuracy in int8")
st.caption("Runs float32, int8 and int16x8 (served from the store when there), feeds the same inputs through each "
           "with every layer's output kept, and compares each layer with float32. The ranking metric is the "
           "**channel error**: for each output channel, the RMSE against float32 divided by the channel's RMS, "
           "median over channels — a few huge activations cannot hide the damage to all the others.")
waiting = _selection.run_blocked_reason()  # a refused model or data, or other work running (they share two cores)
busy = bool(waiting)
layer_job = st.session_state.get("insight_layer_job")
layer_running = layer_job is not None and layer_job.running
if st.button("Compare layers", type="primary", icon=":material/troubleshoot:", key="insight_layers_button",
             disabled=bool(busy), help=waiting):
    st.session_state["insight_layer_job"] = LayerJob(_selection.model_ref(), _selection.data_ref(),
                                                     _results.store_path(), _selection.trusted()).start()
    st.rerun()
compared = None
if layer_running:
    live_ui(layer_job, layer_progress_ui)
elif about_current(layer_job) and layer_job.error:
    st.error(f"{layer_job.error} Fix the model or data on the Model & data page, then compare again.",
             icon=":material/error:")
elif about_current(layer_job):
    compared = layer_job
    suggest_once(layer_job)
    layers_ui(layer_job.result)
elif layer_job is not None:
    st.caption(f"The last comparison was of {layer_job.model_ref} with {layer_job.data_ref}; compare again for "
               "the current selection.")

st.subheader("Per-tensor validation (LiteRT Quantizer)")
validation_ui()

st.subheader("Weights per layer")
weights_ui(stored)
sparsity_ui(stored)

st.subheader("Keep the worst layers in float")
st.caption("Selective quantization: int8 everywhere except the chosen layers, converted with TensorFlow Lite's "
           "QuantizationDebugger (denylisted nodes) and stored as scheme **int8_selective**.")
selective_job = st.session_state.get("insight_selective_job")
selective_running = selective_job is not None and selective_job.running
if compared is None:
    st.info("Compare layers first: the suggestion ranks the layers by their int8 channel error.",
            icon=":material/info:")
else:
    keep = keep_ui(compared)
    label = f"Keep {len(keep)} layer{'s' if len(keep) != 1 else ''} in float and re-convert"
    if st.button(label, type="primary", icon=":material/play_arrow:", key="insight_keep_button",
                 disabled=bool(busy) or not keep, help=waiting or ("Choose at least one layer." if not keep else None)):
        st.session_state["insight_selective_job"] = SweepJob(
            model_ref=_selection.model_ref(), data_ref=_selection.data_ref(), selection="int8_selective",
            overrides={"keep_float": ",".join(keep)}, store=_results.store_path(), recompute=False,
            trusted=_selection.trusted(), budget_s=None, workspace=_workspace.token()).start()
        st.rerun()
if selective_running:
    live_ui(selective_job, sweep_progress_ui)
elif about_current(selective_job) and selective_job.error:
    st.error(f"{selective_job.error} Fix the model or data on the Model & data page, then try again.",
             icon=":material/error:")
elif about_current(selective_job):
    before_after_ui(stored, selective_job.result["results"][0])
elif "int8_selective" in stored:
    st.caption("The newest stored int8_selective run of this model:")
    before_after_ui(stored, stored["int8_selective"])

st.subheader("Search for the smallest or fastest model within an accuracy loss")
max_loss, objective, trials, budget = search_settings_ui()
search_job = st.session_state.get("insight_search_job")
search_running = search_job is not None and search_job.running
if st.button(f"Search {trials} candidate{'s' if trials != 1 else ''}", type="primary", icon=":material/search:",
             key="insight_search_button", disabled=bool(busy), help=waiting):
    st.session_state["insight_search_job"] = SearchJob(_selection.model_ref(), _selection.data_ref(), max_loss,
                                                       objective, trials, budget or None, _results.store_path(),
                                                       _selection.trusted()).start()
    st.session_state.pop("insight_search_axis", None)  # the chart follows the new objective
    st.rerun()
if search_running:
    live_ui(search_job, search_progress_ui)
elif about_current(search_job):
    search_result_ui(search_job)
elif search_job is not None:
    st.caption(f"The last search was for {search_job.model_ref} with {search_job.data_ref}; search again for the "
               "current selection.")
