"""Home: what the tool does, the three-step flow, and the latest results at a glance."""

import streamlit as st

from optlib.analysis import quality, timing
from optlib.units import format_bytes
from pages import _results, _shared, _state

_state.through_router(__file__)

st.title("Shrink and speed up TensorFlow Lite models")
st.markdown(
    "This dashboard runs TensorFlow Lite model-optimization schemes **for real** — post-training "
    "quantization (float16, dynamic range, full integer, int16 activations), quantization-aware "
    "training, pruning, clustering and their combinations — then measures each result on the LiteRT "
    "interpreter and compares **accuracy, size and latency** side by side. Everything works offline "
    "on a built-in model and dataset; bring your own model and data when you are ready."
)

st.subheader("Three steps")
step1, step2, step3 = st.columns(3)
with step1.container(border=True):
    st.markdown("**1 · Choose a model and data**")
    st.caption("The built-in digits CNN and handwritten digits are already chosen. Or pick a zoo "
               "model, upload a .keras / .h5 / zipped SavedModel, an .npz or a zip of class folders.")
    st.page_link("pages/model_data.py", label="Model & data", icon=":material/dataset:")
with step2.container(border=True):
    st.markdown("**2 · Run optimization schemes**")
    earlier = timing.estimate(_results.typical_seconds(_state.DEFAULT_MODEL), _state.DEFAULT_SCHEMES,
                              _state.DEFAULT_MODEL)
    # The stored times cover building and measuring each scheme, not starting TensorFlow or loading the model.
    left_out = "" if earlier == timing.NOTHING_TO_GO_BY else " Add the time to start TensorFlow and load the model."
    st.caption(f"Five post-training schemes are selected by default: one click on Run ({earlier}).{left_out} "
               "Add training-time schemes and tune their settings.")
    st.page_link("pages/optimize.py", label="Optimize", icon=":material/tune:")
with step3.container(border=True):
    st.markdown("**3 · Compare and export**")
    st.caption("Tables in the style of the TFLite guide, accuracy-vs-size and -latency scatter plots "
               "with the Pareto front, size and latency bars; download models, results and charts.")
    st.page_link("pages/compare.py", label="Compare", icon=":material/monitoring:")

st.subheader("Latest results")
runs = _results.stored_runs()
finished = runs[runs["status"].eq("ok")] if len(runs) else runs
if finished.empty:
    st.info("No results yet. Open **Optimize** and click **Run**: the defaults run five post-training "
            "schemes on the built-in model and data.", icon=":material/info:")
    st.stop()

latest = finished.sort_values("id", ascending=False).iloc[0]
group = finished[finished["model"].eq(latest["model"]) & finished["dataset"].eq(latest["dataset"])]
st.caption(f"Most recent model and data: **{latest['model']}** on **{latest['dataset']}** "
           f"({len(group)} scheme{'s' if len(group) != 1 else ''}).")

smallest = group.loc[group["size_bytes"].idxmin()]
fastest = group.loc[group["latency_ms"].idxmin()]
measured = [row for _, row in group.iterrows() if quality.value(row) is not None]
# Best in the task's own direction (top-1 up, MAE down); on a tie the smaller file wins: it is the better trade.
best = min(measured, key=lambda row: (quality.best_first(row), row["size_bytes"])) if measured else None


def versus(row, column, what):
    """The tile's short note, "int8 · 3.5× smaller", and the whole sentence for its help. A third of a 1024 px
    page shows about 22 characters: a longer note drops words, then the ratio; the name stays whole."""
    value = row[column]
    if row["scheme"] == "float32" or value != value:  # float32 itself, or NaN: no baseline
        return row["scheme"], f"{row['scheme']}."
    notes = [f"{row['scheme']} · {value:.1f}× {what}", f"{row['scheme']} · {value:.1f}×", row["scheme"]]
    return next(note for note in notes if len(note) <= TILE_NOTE or note == notes[-1]), \
        f"{row['scheme']}: {value:.1f}× {what} than float32."


TILE_NOTE = 22
smaller, smaller_help = versus(smallest, "size_ratio", "smaller")
faster, faster_help = versus(fastest, "speedup", "faster")
metric1, metric2, metric3 = st.columns(3)
metric1.metric("Smallest file", format_bytes(smallest["size_bytes"]), smaller,
               help=f"The smallest .tflite file of this model and dataset. {smaller_help}",
               delta_color="off", delta_arrow="off", border=True)
metric2.metric("Fastest (median)", f"{fastest['latency_ms']:.3g} ms", faster,
               help=f"The lowest median latency on the LiteRT interpreter of this machine. {faster_help}",
               delta_color="off", delta_arrow="off", border=True)
if best is not None:
    direction = "" if quality.higher_is_better(best) else f" · {quality.direction(best)}"
    best_note = best["scheme"] + direction if len(best["scheme"] + direction) <= TILE_NOTE else best["scheme"]
    best_label = f"Best {quality.short_name(best)}" if quality.higher_is_better(best) else f"Lowest {quality.name(best)}"
    metric3.metric(best_label, quality.figure(best), best_note,
                   help=f"{best['scheme']}, {quality.direction(best)}; on a tie, the smaller file is named.",
                   delta_color="off", delta_arrow="off", border=True)
else:
    metric3.metric("Accuracy", _shared.GAP, "untrained model",
                   help="The model is untrained (no labels it was trained for), so its runs give size and latency "
                        "only.", delta_color="off", delta_arrow="off", border=True)

quality_columns = ["accuracy", "accuracy_delta"] if quality.only_top1(group) else ["metric_name", "metric_value",
                                                                                 "metric_delta"]
_results.results_table(group.sort_values("id"), ["scheme", *quality_columns, "size_mb", "gzip_mb", "size_ratio",
                                                "latency_ms", "speedup"])
st.page_link("pages/compare.py", label="Compare all results in charts", icon=":material/arrow_forward:")
