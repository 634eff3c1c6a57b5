"""Stored results as the pages read and show them: the store, cached reads, filters, result tables and
their column settings, a run's label and code, and a scheme's live status line.
"""

from pathlib import Path

import pandas as pd
import streamlit as st

from optlib import paths
from optlib.analysis import timing
from optlib.engine import schemes
from optlib.engine.store import Store, result_row
from pages._shared import GAP

STATUS_ICONS = {"waiting": ":material/schedule:", "loading": ":material/hourglass_top:",
                "starting": ":material/progress_activity:",
                "running": ":material/progress_activity:", "cached": ":material/inventory_2:",
                "ok": ":material/check_circle:", "failed": ":material/error:",
                "skipped": ":material/block:", "interrupted": ":material/block:",
                "timeout": ":material/timer_off:", "cancelled": ":material/stop_circle:"}


def store_path():
    return paths.default_store_path()


def _store_version(path):
    """Changes whenever the store is written (SQLite WAL mode writes the -wal file)."""
    version = []
    for file in (path, path.with_name(path.name + "-wal")):
        try:
            stat = file.stat()
            version.append((stat.st_mtime_ns, stat.st_size))
        except FileNotFoundError:
            version.append(None)
    return tuple(version)


@st.cache_data(show_spinner=False, max_entries=8)
def _stored_runs(path, version):
    from optlib.analysis import report

    rows = [result_row(row) for row in Store(path).rows(latest=True)]
    return report.frame(rows)


def stored_runs():
    """Every stored run this visitor may see (:mod:`pages._workspace`: the built-in models' and their own
    uploads'), the newest per model, data, scheme and settings, as a DataFrame."""
    from pages import _workspace

    path = Path(store_path())
    Store(path)  # creates an empty store on first use
    return _workspace.visible(_stored_runs(str(path), _store_version(path)))


@st.cache_data(show_spinner=False, max_entries=8)
def _typical_seconds(path, version, model):
    return timing.typical_seconds(Store(path).rows(model=model, status="ok"), model=model)


def typical_seconds(model):
    """Median seconds per scheme of this machine's earlier finished runs of ``model`` (see optlib.analysis.timing)."""
    path = Path(store_path())
    Store(path)  # creates an empty store on first use
    return _typical_seconds(str(path), _store_version(path), model)


def stored_runs_or_stop(message):
    """Every stored run; or, when there is none yet, ``message``, a link to Optimize, and the page stops."""
    runs = stored_runs()
    if runs.empty:
        st.info(message, icon=":material/info:")
        st.page_link("pages/optimize.py", label="Go to Optimize", icon=":material/tune:")
        st.stop()
    return runs


def filter_runs(df, models_=(), datasets=(), schemes_=(), ok_only=True):
    """Rows of ``df`` matching the chosen models, datasets and schemes (empty = all)."""
    keep = df["status"].eq("ok") if ok_only else df["status"].notna()
    for column, chosen in (("model", models_), ("dataset", datasets), ("scheme", schemes_)):
        if chosen:
            keep &= df[column].isin(list(chosen))
    return df[keep]


def filters_ui(df, page):
    """Draw model, dataset and scheme filters; return the three chosen lists (empty = all)."""
    columns = st.columns(3)
    choices = []
    for column, (field, label) in zip(columns, (("model", "Models"), ("dataset", "Datasets"),
                                                ("scheme", "Schemes"))):
        options = list(dict.fromkeys(df[field].dropna()))
        if field == "scheme":
            order = {name: i for i, name in enumerate(schemes.names())}
            options.sort(key=lambda name: order.get(name, len(order)))
        key = f"{page}_filter_{field}"
        if key in st.session_state:  # a choice that no longer exists would raise
            st.session_state[key] = [v for v in st.session_state[key] if v in options]
        choices.append(column.multiselect(label, options, key=key, placeholder=f"All {label.lower()}"))
    return choices


TALL_ENOUGH = 30  # rows a table shows whole, without a scroll bar of its own; a longer one scrolls inside


def figures_table(table, formats, columns=None, labels=None, key=None):
    """Show a table of figures: each in its format, a missing one as "—". The cells keep their numbers, so a
    click on a column's header sorts by value (9.1 before 10.2), not by the text.

    ``columns``: the columns shown, in order (all by default); ``labels``: {column: short header}, the full
    name in the header's tooltip. Up to :data:`TALL_ENOUGH` rows, the table is as tall as its rows."""
    formats = {column: spec for column, spec in formats.items() if column in table}
    numbers = table.assign(**{column: pd.to_numeric(table[column]) for column in formats})
    config = {column: st.column_config.Column(label, help=column) for column, label in (labels or {}).items()
              if column in table}
    st.dataframe(numbers.style.format(formats, na_rep=GAP), hide_index=True, placeholder=GAP,
                 column_order=columns, column_config=config or None, key=key,
                 height="content" if len(table) <= TALL_ENOUGH else "auto")


def code_for_run(run_id):
    """Runnable TensorFlow code reproducing a stored run (from its full stored record).

    Raises:
        ValueError: the run has nothing to reproduce (e.g. it did not finish).
    """
    from optlib.views import codegen

    row = Store(store_path()).get(int(run_id))
    if row is None:
        raise ValueError(f"Run #{run_id} is not in the store any more.")
    return codegen.code_for(result_row(row))


def code_ui(run_id):
    """Show the code that reproduces a run, ready to copy; or say why there is none."""
    try:
        st.code(code_for_run(run_id), language="python")
    except ValueError as problem:
        st.info(f"No code for this run: {problem}", icon=":material/info:")


def run_label(row):
    """One line naming a run: id, model, dataset, scheme, and the settings it changed from the scheme's defaults
    (so two runs of one scheme, e.g. int8_selective keeping 1 or 2 layers in float, read differently)."""
    label = f"#{row['id']} · {row['model']} · {row['dataset']} · {row['scheme']}"
    if not schemes.known(row["scheme"]) or not isinstance(row.get("settings"), dict):
        return label
    defaults = schemes.settings_for(row["scheme"])
    changed = [f"{name}={value}" for name, value in row["settings"].items()
               if name in defaults and value != defaults[name]]
    return label + (f" ({', '.join(changed)})"[:80] if changed else "")


def status_line(scheme, stage, message=""):
    """A line of text for the live status of one scheme."""
    name = scheme.split(" (")[0]  # a grid's line: "prune (sparsity=0.3)"
    title = schemes.get(name).title if schemes.known(name) else scheme
    text = f"{STATUS_ICONS.get(stage, '')} **{scheme}** — {title}: *{stage}*"
    return f"{text} — {message}" if message else text


RESULT_COLUMNS = {
    "backend": st.column_config.TextColumn("Backend", help="What made the model: TFLiteConverter ('converter') "
                                           "or LiteRT Quantizer ('litert-quantizer')"),
    "id": st.column_config.NumberColumn("Run", format="%d"),
    "model": st.column_config.TextColumn("Model"),
    "dataset": st.column_config.TextColumn("Dataset"),
    "scheme": st.column_config.TextColumn("Scheme"),
    "status": st.column_config.TextColumn("Status"),
    "accuracy": st.column_config.NumberColumn("Top-1", format="percent"),  # 97.5%, as every page shows it
    "accuracy_delta": st.column_config.NumberColumn("Δ top-1 (pp)", format="%+.2f",
                                                    help="percentage points against float32"),
    # Significant digits: a 5 kB regression MLP and a 14 MB MobileNetV2 share these columns.
    "size_mb": st.column_config.NumberColumn("Size MB", format="%.4g"),
    "gzip_mb": st.column_config.NumberColumn("Gzip MB", format="%.4g"),
    "size_ratio": st.column_config.NumberColumn("Smaller ×", format="%.2f",
                                                help="float32 size / this size"),
    "latency_ms": st.column_config.NumberColumn("Latency ms", format="%.4g"),
    "speedup": st.column_config.NumberColumn("Speed-up ×", format="%.2f",
                                             help="float32 latency / this latency (same threads)"),
    "sparsity": st.column_config.NumberColumn("Sparsity", format="%.2f"),
    "error": st.column_config.TextColumn("Reason (if failed)", width="large"),
    "metric_name": st.column_config.TextColumn("Metric"),
    "metric_value": st.column_config.NumberColumn("Value", format="%.4g",
                                                  help="the task's metric: top-1 or accuracy at 0.5 in %, "
                                                       "MAE in the label's unit"),
    "metric_delta": st.column_config.NumberColumn("Δ vs float32", format="%+.4g",
                                                  help="the metric's change against float32, in its unit "
                                                       "(percentage points for accuracies)"),
    "fidelity_snr_db": st.column_config.NumberColumn("SNR dB", format="%.1f",
                                                     help="fidelity to the Keras float model on the same inputs"),
}


DEFAULT_COLUMNS = ("scheme", "backend", "status", "accuracy", "accuracy_delta", "metric_name", "metric_value",
                   "fidelity_snr_db", "size_mb", "gzip_mb", "size_ratio", "latency_ms", "speedup", "sparsity", "error")


def results_text_table(df):
    """A plain (non-interactive) table of results: cheap to redraw every second while a sweep runs.

    Top-1 for classifiers; otherwise the task's metric by name (a regression model's MAE).
    """
    from optlib.analysis import quality

    figure = ["accuracy"] if quality.only_top1(df) else ["metric_name", "metric_value"]
    columns = ("scheme", "status", *figure, "size_mb", "gzip_mb", "latency_ms", "sparsity")
    df = quality.in_table_units(df)
    formats = {"accuracy": "{:.1%}", "metric_value": "{:.4g}", "size_mb": "{:.4g}", "gzip_mb": "{:.4g}",
               "latency_ms": "{:.4g}", "sparsity": "{:.2f}"}
    shown = df[[c for c in columns if c in df.columns]].copy()
    for column, pattern in formats.items():
        if column in shown:
            shown[column] = shown[column].map(lambda v, p=pattern: GAP if v != v else p.format(v))
    shown.columns = [RESULT_COLUMNS[c].get("label", c) if c in RESULT_COLUMNS else c for c in shown.columns]
    st.table(shown.set_index(shown.columns[0]))


def results_table(df, columns=DEFAULT_COLUMNS):
    """Show result rows with readable headers and number formats (accuracies in percent)."""
    from optlib.analysis import quality

    from optlib.analysis import failures

    columns = [c for c in columns if c in df.columns]
    df = quality.in_table_units(df)
    df = df.assign(error=df["error"].map(lambda e: failures.sentence(e) if isinstance(e, str) and e else "")) \
        if "error" in df.columns else df
    st.dataframe(df[columns], hide_index=True, column_config={c: RESULT_COLUMNS.get(c) for c in columns},
                 placeholder=GAP)
