"""What every page shares: session state, the sidebar, uploads and cached loaders.

Kept out of the page scripts so that each page reads like a description of
its UI. Nothing here imports TensorFlow at import time: the Home page must
appear fast, and only loading a model (Model & data page) pulls it in.

Session state keys:

- ``app_*``: the engine selection of this browser session (model and data
  references, their display labels, the trusted flag, the upload folder).
- ``data_*``, ``optimize_*``, ``compare_*``, ``export_*``, ``home_*``, ``wizard_*``: widgets
  and values of one page each.
"""

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from optlib import paths
from optlib.analysis import timing
from optlib.engine import schemes
from optlib.engine.store import Store, result_row
from optlib.errors import InputError

APP_DIR = Path(__file__).resolve().parents[1]

DEFAULT_MODEL = "digits_cnn"
DEFAULT_DATA = "digits"
DEFAULT_SCHEMES = ("float32", "float16", "dynamic", "int8", "int16x8")
GAP = "—"  # what every table shows for a figure that is missing (never "None"; a Note column says why)


# Widgets of a page that is not on screen lose their state; values under these
# prefixes are carried over page switches. Buttons, uploaders, downloads and
# charts cannot be set through session state, so their keys end with one of
# the suffixes below and are left alone.
KEPT_PREFIXES = ("data_", "optimize_", "compare_", "export_", "home_", "insight_")
NOT_KEPT_SUFFIXES = ("_button", "_upload", "_download", "_chart", "_table")

STATUS_ICONS = {"waiting": ":material/schedule:", "loading": ":material/hourglass_top:",
                "starting": ":material/progress_activity:",
                "running": ":material/progress_activity:", "cached": ":material/inventory_2:",
                "ok": ":material/check_circle:", "failed": ":material/error:",
                "skipped": ":material/block:", "interrupted": ":material/block:",
                "timeout": ":material/timer_off:", "cancelled": ":material/stop_circle:"}


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
        "optimize_recompute": False, "optimize_job": None,
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


def init_state():
    """Initialise this session's state (once) and keep page widgets across page switches."""
    if "app_model_ref" not in st.session_state:
        reattach_sweep()
    for key, value in _defaults().items():
        st.session_state.setdefault(key, value)
    for key in list(st.session_state.keys()):
        if key.startswith(KEPT_PREFIXES) and not key.endswith(NOT_KEPT_SUFFIXES):
            st.session_state[key] = st.session_state[key]


# --- The current selection ---------------------------------------------------

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


def store_path():
    return paths.default_store_path()


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


@st.cache_resource(show_spinner=False)
def sandbox_status():
    """Whether this server can sandbox model work (:mod:`optlib.engine.sandbox`); said once in the server's
    log when the app starts, and in the sidebar when there is none."""
    import logging

    from optlib.engine import sandbox

    found = sandbox.status()
    if found.available:
        logging.getLogger("optlib").warning("optlib: model work runs in a Landlock sandbox (ABI %s): %s.",
                                            found.abi, "; ".join(found.covers))
    else:
        logging.getLogger("optlib").warning("optlib: NO SANDBOX (%s). Model files from users are refused unless "
                                            "OPTLIB_ALLOW_UNSANDBOXED=1.", found.reason)
    return found


def sidebar():
    """The sidebar every page shows: current model, dataset and store."""
    from pages import _workspace

    _workspace.token()  # in the address from the first page on, so a reload keeps this browser's workspace
    with st.sidebar:
        st.markdown("#### Current selection")
        st.markdown(f":material/neurology: **Model**  \n`{model_label()}`")
        st.markdown(f":material/dataset: **Dataset**  \n`{data_label()}`")
        if selection_problem():
            st.caption(":material/block: not usable; see Model & data")
        if trusted():
            st.caption(":material/warning: trusted loading is on (code in model files may run)")
        found = sandbox_status()
        if not found.available:
            st.caption(f":material/warning: no sandbox on this server ({found.reason}): model files from users "
                       "are refused unless the operator set OPTLIB_ALLOW_UNSANDBOXED=1")
        running = busy()
        if running:
            page, title = BACKGROUND_JOBS[running]
            st.caption(f":material/progress_activity: Work is running in the background; its progress is on "
                       f"{title}.")
            st.page_link(page, label=title, icon=":material/progress_activity:")
        server_sweeps_ui()
        runs = stored_runs()
        st.markdown(f":material/database: **Store**  \n`{store_path()}`")
        st.caption(f"{len(runs)} stored run{'s' if len(runs) != 1 else ''}"
                   + ("" if _workspace.shared_gallery() else " (the built-in models' and your uploads')"))


def server_sweeps_ui():
    """The sweeps running on this server (every tab's) and on this machine: whose, how far, a link to follow one.
    Redrawn every few seconds while any runs."""
    from pages import _jobs

    polling = bool(_jobs.running_sweeps() or _jobs.other_processes())
    st.fragment(_server_sweeps, run_every=SERVER_POLL_S if polling else None)(polling)


SERVER_POLL_S = 2.0


def _server_sweeps(polling):
    from pages import _jobs, _workspace

    sweeps, others = _jobs.running_sweeps(), _jobs.other_processes()
    if not sweeps and not others:
        if polling:  # the last one just ended: draw the page once more, without the polling
            st.rerun()
        return
    st.markdown("#### On this server")
    here = st.session_state.get("optimize_job")
    for job in sweeps:
        arguments = job.arguments
        model, data_, mine = _workspace.sweep_names(arguments["model_ref"], arguments["data_ref"], job.workspace)
        finished, total, waiting = job.how_far()
        whose = ("your sweep (this tab)" if job is here else "your sweep") if mine else "another visitor's sweep"
        line = f":material/progress_activity: **{model}** on **{data_}**: {finished} of {total} finished"
        line += f"{' · waiting in line' if waiting else ''} · {whose}"
        if job is not here and _workspace.may_follow(arguments["model_ref"], arguments["data_ref"], job.workspace):
            line += f" · [follow it](optimize?job={job.token}&ws={_workspace.token()})"
        st.caption(line)
    for ticket in others:
        label = str(ticket.get("label") or "")
        named = _workspace.shared_gallery() or label.split(" / ")[0] in _workspace.ZOO
        state = "running" if ticket.get("running") else "waiting in line"
        st.caption(f":material/terminal: A sweep of another process (the command line, a notebook or another "
                   f"server){f': **{label}**' if named and label else ''} · {state}")


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


def keep_choice(key, options):
    """Forget a kept selectbox value that is no longer among the options."""
    if key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]


def literal(text):
    """``text`` as written, in a Markdown element (st.error, st.caption): names like tf.__operators__.getitem
    keep their underscores instead of turning bold."""
    return str(text).replace("__", "\\_\\_")


def outcome(function, *args, **kwargs):
    """("ok", ``function(...)``) or ("error", message) for an InputError: a page caches this, so a refusal is
    remembered like an answer and a rerun does not do the work again. :func:`answer` turns it back."""
    try:
        return "ok", function(*args, **kwargs)
    except InputError as problem:
        return "error", str(problem)


def answer(result):
    """The value of an :func:`outcome`, or its InputError raised again."""
    kind, value = result
    if kind == "error":
        raise InputError(value)
    return value


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


def failure_ui(raw, lead=""):
    """An engine error as a sentence (what happened, what to try), the engine's own message one click away."""
    from optlib.analysis import failures

    said = failures.in_words(raw)
    st.error(literal(lead + said.sentence), icon=":material/error:")
    if said.known:
        with st.expander("The engine's own message", icon=":material/terminal:"):
            st.code(said.raw, language=None, wrap_lines=True)


def raw_messages_ui(messages):
    """The engine's own messages behind the sentences shown above ({what: raw}), one click away."""
    from optlib.analysis import failures

    known = {what: raw for what, raw in messages.items() if raw and failures.in_words(raw).known}
    if known:
        with st.expander(f"The engine's own message{'s' if len(known) != 1 else ''} ({len(known)})",
                         icon=":material/terminal:"):
            for what, raw in known.items():
                st.markdown(f"**{what}**")
                st.code(raw, language=None, wrap_lines=True)


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
