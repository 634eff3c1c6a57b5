"""Export: download optimized models, the results as CSV or JSON, the charts and the code."""

import re
import tempfile
from pathlib import Path

import streamlit as st

from optlib.analysis import report
from optlib.engine import isolated
from optlib.engine.store import Store, result_row
from optlib.errors import InputError
from optlib.units import format_bytes
from optlib.views import bundle, charts
from pages import _results, _selection, _shared, _state, _uploads

_state.through_router(__file__)

CHARTS = {
    "table1": ("Table 1-style figure", lambda df: charts.table1_figure(df)),
    "table2": ("Table 2-style figure", lambda df: charts.table2_figure(df)),
    "scatter_size": ("Accuracy vs size", lambda df: charts.scatter(df, x="size_mb")),
    "scatter_gzip": ("Accuracy vs gzipped size", lambda df: charts.scatter(df, x="gzip_mb")),
    "scatter_latency": ("Accuracy vs latency", lambda df: charts.scatter(df, x="latency_ms")),
    "size_bars": ("Size bars (raw and gzipped)", lambda df: charts.size_bars(df)),
    "latency_bars": ("Latency bars", lambda df: charts.latency_bars(df)),
}


def file_stem(*parts):
    """A download name made of safe characters only."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(str(p) for p in parts)).strip("_.") or "optlib"


def model_download_ui(view):
    """Pick a finished run and download its .tflite file."""
    available = view[view["tflite_path"].map(lambda p: bool(p) and Path(p).is_file())]
    if available.empty:
        st.info("No .tflite file of the shown runs is on disk any more.", icon=":material/info:")
        return None
    labels = {int(row["id"]): _results.run_label(row) for _, row in available.iterrows()}
    _shared.keep_choice("export_run", list(labels))
    run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="export_run")
    row = available[available["id"].eq(run_id)].iloc[0]
    path = Path(row["tflite_path"])
    name = file_stem(Path(row["model"]).stem, row["dataset"], row["scheme"], run_id)
    st.download_button(f"Download {row['scheme']} model (.tflite, {format_bytes(path.stat().st_size)})",
                       data=path.read_bytes, file_name=f"{name}.tflite",
                       mime="application/octet-stream", icon=":material/download:", on_click="ignore",
                       key="export_tflite_download")
    return row


def source_ref(stored):
    """The model the run started from, wherever this server still has it: the current model, the zoo model of
    the run's name, or an upload still kept (any session's); else None."""
    from optlib.inputs import models

    candidates = [_selection.model_ref()] + ([stored["model"]] if stored["model"] in models.ZOO else [])
    for ref in dict.fromkeys(candidates):
        try:
            if models.resolve(ref).fingerprint == stored["model_fingerprint"]:
                return ref
        except InputError:
            continue
    return _uploads.find_upload(stored["model"], stored["model_fingerprint"])


GONE = "this server no longer keeps {model} (an upload lasts as long as the session that sent it); upload it " \
       "again on Model & data to include it"


def source_model(ref, fingerprint, folder):
    """:func:`optlib.views.bundle.source_model`; a zoo model, which TensorFlow builds to save it, is saved in a
    process of its own under the worker budget. A failure there becomes the README's note, not a lost bundle."""
    from optlib.inputs import models

    try:
        if ref not in models.ZOO:  # a file: nothing to build
            return bundle.source_model(ref, fingerprint, folder)
        return isolated.call(bundle.source_model, ref, fingerprint, folder, what="Saving the source model",
                             touches=isolated.Touches(model=ref, write=(folder,)))
    except InputError as problem:
        return None, f"the source model could not be saved ({problem})"


def bundle_bytes(run_id, ref):
    """The zip of one run: its .tflite, the source model (``ref``, when this server has it), code, recipes and figures.

    Made when the button is pressed, outside the page's run: it reads nothing of the session.
    """
    stored = Store(_results.store_path()).get(run_id)
    with tempfile.TemporaryDirectory(prefix="optlib-bundle-") as folder:
        model, note = (source_model(ref, stored["model_fingerprint"], folder) if ref else
                       (None, GONE.format(model=stored["model"])))
        return bundle.make(result_row(stored), Path(stored["tflite_path"]).read_bytes(), model, note)


def bundle_ui(row):
    """One download with everything about the chosen run."""
    run_id = int(row["id"])
    ref = source_ref(Store(_results.store_path()).get(run_id))
    has_model = ref is not None
    st.download_button("Download the bundle (.zip)", data=lambda: bundle_bytes(run_id, ref),
                       file_name=f"{file_stem(Path(row['model']).stem, row['scheme'], row['id'])}-bundle.zip",
                       mime="application/zip", icon=":material/folder_zip:", on_click="ignore",
                       key="export_bundle_download")
    st.caption("The optimized `.tflite`, " + ("the source model, " if has_model else "") +
               "the code that reproduces it, the data recipe and the measured row, with a README." +
               ("" if has_model else f" The source model is not included: {GONE.format(model=row['model'])}."))


st.title("Export")
runs = _results.stored_runs_or_stop("Nothing to export yet. Run a few schemes first.")

chosen = _results.filters_ui(runs, "export")
everything = _results.filter_runs(runs, *chosen, ok_only=False)
view = _results.filter_runs(runs, *chosen)
if everything.empty:
    st.info("No run matches these filters.", icon=":material/info:")
    st.stop()

st.subheader("Results")
st.caption(f"{len(everything)} run{'s' if len(everything) != 1 else ''} (failed ones included, with their reason).")
csv_column, json_column = st.columns(2)
csv_column.download_button("Results as CSV", data=report.to_csv(everything), file_name="optlib-results.csv",
                           mime="text/csv", icon=":material/table:", on_click="ignore", key="export_csv_download",
                           width="stretch")
json_column.download_button("Results as JSON", data=report.to_json(everything), file_name="optlib-results.json",
                            mime="application/json", icon=":material/data_object:", on_click="ignore",
                            key="export_json_download", width="stretch")

if view.empty:
    st.info("No finished run matches these filters: no model or chart to export.", icon=":material/info:")
    st.stop()

st.subheader("Optimized models")
chosen_row = model_download_ui(view)
if chosen_row is not None:
    bundle_ui(chosen_row)

st.subheader("Charts")
st.caption("A self-contained HTML page with the interactive Plotly figure (works offline).")
st.selectbox("Chart", list(CHARTS), format_func=lambda key: CHARTS[key][0], key="export_chart")
chart_key = st.session_state["export_chart"]
st.download_button(f"Download “{CHARTS[chart_key][0]}” as HTML",
                   data=lambda: CHARTS[chart_key][1](view).to_html(include_plotlyjs=True, full_html=True),
                   file_name=f"optlib-{chart_key}.html", mime="text/html", icon=":material/download:",
                   on_click="ignore", key="export_chart_download")

if chosen_row is not None:
    st.subheader("Code")
    st.caption(f"Runnable TensorFlow code that reproduces {_results.run_label(chosen_row)}.")
    try:
        code = _results.code_for_run(chosen_row["id"])
    except ValueError as problem:
        st.info(f"No code for this run: {problem}", icon=":material/info:")
    else:
        st.download_button("Download the code (.py)", data=code,
                           file_name=f"{file_stem('reproduce', chosen_row['scheme'], chosen_row['id'])}.py",
                           mime="text/x-python", icon=":material/code:", on_click="ignore",
                           key="export_code_download")
        st.code(code, language="python")
