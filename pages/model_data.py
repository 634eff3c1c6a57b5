"""Model & data: choose or upload a model and a dataset, then see what was found."""

import streamlit as st

from optlib.inputs import data_refs, graph_models, models, tasks
from optlib.errors import InputError
from pages import _selection, _shared, _state, _uploads, _workspace

_state.through_router(__file__)

MODEL_SOURCES = {"zoo": "Built-in zoo", "upload": "Upload a model file"}
DATA_SOURCES = {"digits": "Built-in digits", "diabetes": "Built-in diabetes (regression)", "npz": "Upload an .npz", "zip": "Upload a zip of class folders",
                "tfds": "A TensorFlow Datasets name"}


def trusted_loading_ui():
    """The per-file trust box, offered only when the server's operator allows trusted loading."""
    if models.trusted_loading_allowed():
        st.checkbox("I trust this file: allow Lambda layers and custom code stored in it", key="data_trusted",
                    help="Off by default. A model file with a Lambda layer runs Python code when loaded; "
                         "turn this on only for files you made yourself.")
    else:
        st.caption(":material/lock: Trusted loading is off on this server: model files with Lambda layers or "
                   "custom code are refused. The operator can allow it by starting the app with "
                   "OPTLIB_TRUSTED_LOADING=1.")


def model_ui():
    """Draw the model choice; return (reference, label), or None while an upload is awaited."""
    source = st.radio("Model source", list(MODEL_SOURCES), format_func=MODEL_SOURCES.get,
                      key="data_model_source", horizontal=True)
    if source == "zoo":
        name = st.selectbox("Zoo model", list(models.ZOO), key="data_zoo_model",
                            format_func=lambda n: f"{n} — {models.ZOO[n].title}")
        if name in models.TRAINED:
            st.caption(f"Trained once on first use on the built-in {models.DEMO_DATA[name]} data (seconds).")
        else:
            st.caption("ImageNet weights are used when they are in the Keras cache; otherwise the "
                       "architecture is untrained and only size and latency are meaningful.")
        return name, ""
    uploaded = st.file_uploader(
        f"A .keras or .h5 file, a .tflite (from TensorFlow, PyTorch, JAX or ONNX tools), or a .zip of a "
        f"SavedModel folder (up to {_uploads.upload_limit_mb()} MB)",
        type=list(_uploads.MODEL_UPLOAD_TYPES), key="data_model_upload")
    trusted_loading_ui()
    if uploaded is None:
        current = st.session_state["app_model_ref"]
        if current not in models.ZOO:
            st.caption(f"Current model: **{_selection.model_label()}** (uploaded earlier).")
            return current, _selection.model_label()
        return None
    path = _uploads.save_upload(uploaded, _uploads.MODEL_UPLOAD_TYPES, "model")
    try:
        _workspace.add_model(models.resolve(str(path)).fingerprint)  # its results are this browser's to see
    except InputError:
        pass  # the summary below says what is wrong with it
    return str(path), path.name


def data_ui():
    """Draw the dataset choice; return (reference, label), or None while an upload or a name is awaited."""
    source = st.radio("Dataset source", list(DATA_SOURCES), format_func=DATA_SOURCES.get,
                      key="data_data_source", horizontal=True)
    if source == "digits":
        st.caption("scikit-learn's 1,797 handwritten digits (8×8, ten classes), split 80/20 into training and "
                   "test sets. Offline, always available.")
        return "digits", ""
    if source == "diabetes":
        st.caption("scikit-learn's diabetes data: 442 patients, 10 features, the disease's progression a year "
                   "later as the target (regression), split 80/20. Offline, always available.")
        return "diabetes", ""
    if source == "tfds":
        name = st.text_input("Dataset name", key="data_tfds_name", placeholder="e.g. mnist")
        split = st.text_input("Split (optional)", key="data_tfds_split", placeholder="e.g. test")
        st.caption("The dataset must already be prepared in the TensorFlow Datasets folder on this "
                   "machine; this app does not download data.")
        if not name.strip():
            return None
        ref = f"tfds:{name.strip()}" + (f":{split.strip()}" if split.strip() else "")
        return ref, ""
    if source == "npz":
        help_text = ("Arrays x_test, y_test and optionally x_train, y_train (or x and y, split 80/20); x_test "
                     "alone gives fidelity to the float model only. Several inputs or outputs: one array per "
                     "name, x_test/NAME or y_test/NAME (or x_test_NAME) after the model's input and output "
                     f"names. Up to {_uploads.upload_limit_mb()} MB.")
    else:
        help_text = ("One sub-folder of images per class (png, jpg, bmp, gif, webp), zipped. "
                     f"Up to {_uploads.upload_limit_mb()} MB.")
    uploaded = st.file_uploader(help_text, type=list(_uploads.DATA_UPLOAD_TYPES[source]), key="data_data_upload")
    if uploaded is None:
        current = st.session_state["app_data_ref"]
        if current != "digits" and not current.startswith("tfds:"):
            st.caption(f"Current dataset: **{_selection.data_label()}** (uploaded earlier).")
            return current, _selection.data_label()
        return None
    path = _uploads.save_upload(uploaded, _uploads.DATA_UPLOAD_TYPES[source], "data")
    return str(path), path.name


DEMOS = {"digits_lstm": "Sequence demo (LSTM)", "diabetes_mlp": "Regression demo (MAE)"}


def demos_ui():
    """One click: a built-in demo model with its own built-in data."""
    st.caption("Or try a built-in demo with its data:")
    with st.container(horizontal=True):  # side by side where they fit, one under the other where they do not
        for name, label in DEMOS.items():
            st.button(label, key=f"data_demo_{name}_button", icon=":material/play_circle:", on_click=choose_demo,
                      args=(name,))


def choose_demo(name):
    """Button callback (before the widgets are drawn): the demo model, its data, tasks detected."""
    data_ref = models.DEMO_DATA[name]
    st.session_state.update({"data_model_source": "zoo", "data_zoo_model": name, "data_data_source": data_ref,
                             "app_task": "auto", "data_task": "auto"})
    _selection.select_model(name)
    _selection.select_data(data_ref)


def task_ui(facts):
    """The task of each output, detected or set; with several outputs, which one is primary."""
    names = [o["name"] for o in facts["outputs"]]
    if st.session_state["app_task"] != "auto" and not all(
            part.partition("=")[0] in names + ["primary"] for part in st.session_state["app_task"].split(",")
            if "=" in part):
        st.session_state["app_task"] = "auto"  # a setting for another model's outputs
    if len(names) == 1:
        if st.session_state.get("data_task") not in ("auto", *tasks.TASKS):
            st.session_state["data_task"] = st.session_state["app_task"] if "=" not in st.session_state["app_task"] \
                else "auto"
        st.selectbox("Task", ("auto", *tasks.TASKS), key="data_task",
                     help="What the output is for, and so which metric a run reports: detected from the output's "
                          "shape and activation and the labels (auto), or set here.")
        st.session_state["app_task"] = st.session_state["data_task"]
        return
    current = st.session_state["app_task"].removeprefix("primary=")
    st.selectbox("Primary output (its metric is the headline figure)", names,
                 index=names.index(current) if current in names else 0, key="data_primary_output")
    chosen = st.session_state["data_primary_output"]
    st.session_state["app_task"] = "auto" if chosen == names[0] else f"primary={chosen}"


def facts_row():
    """A row of facts, each as wide as its words, that wraps onto a second line where they do not fit: four
    equal columns cut them at 1024 px ("28 × 2…", "Classes in the d…")."""
    return st.container(horizontal=True, gap="large")


def fact(row, label, value, **more):
    row.metric(label, value, width="content", **more)


def model_facts_ui(facts):
    st.markdown(f"**Model** `{_selection.model_label()}`" + (f" — *{facts['note']}*" if facts["note"] else ""))
    row = facts_row()
    fact(row, "Input shape", " × ".join(map(str, facts["input_shape"])))
    fact(row, "Parameters", f"{facts['parameters']:,}")
    fact(row, "Operators" if facts.get("form", "keras").startswith("tflite") else "Layers",
         facts["layers"] or _shared.GAP)
    fact(row, "Classes", facts["classes"] or _shared.GAP)
    ports = [f"input `{p['name']}` {' × '.join(map(str, p['shape']))} ({p['dtype']})" for p in facts["inputs"]]
    ports += [f"output `{o['name']}` {' × '.join(map(str, o['shape']))}" + (f" ({o['activation']})" if o["activation"]
                                                                          else "") for o in facts["outputs"]]
    st.caption("; ".join(ports))
    follows = graph_models.WHAT_FOLLOWS.get(facts.get("form", "keras"))
    if follows:  # what this format can and cannot take, before any run
        st.info(f"This model is {follows}", icon=":material/info:")
    if facts.get("keras3"):  # a Keras 3 file: rebuilt for the toolkit, or why it could not be
        st.info(f"This model is {facts['keras3']}." if facts["keras3"].startswith("a Keras")
                else f"Keras 3 file: {facts['keras3']}.", icon=":material/info:")


def data_facts_ui(facts):
    st.markdown(f"**Dataset** `{_selection.data_label()}`")
    row = facts_row()
    fact(row, "Sample shape", " × ".join(map(str, facts["sample_shape"])))
    if facts["classes"]:
        fact(row, "Classes in the data", facts["classes_present"],
             help=f"The model predicts {facts['classes']} classes.")
    else:
        primary_task = facts["tasks"][facts["primary"]]
        fact(row, "Task", primary_task.capitalize(), help="Of the primary output.")
    fact(row, "Test samples", f"{facts['test_samples']:,}")
    fact(row, "Training samples", f"{facts['train_samples']:,}")
    if not facts["train_samples"]:
        st.warning("This dataset has no training split: training-time schemes (QAT, pruning, clustering) "
                   "will fail; post-training schemes work.", icon=":material/warning:")
    for port in facts["inputs"]:
        recipe = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in port["recipe"].items())
        st.caption(f"Preparation of input `{port['name']}` — {recipe}.")
    for output in facts["outputs"]:
        name, higher, _ = tasks.metric_of(output["task"])
        lead = "primary " if output["name"] == facts["primary"] and len(facts["outputs"]) > 1 else ""
        st.caption(f"{'Primary output' if lead else 'Output'} `{output['name']}`: task **{output['task']}**, "
                   f"measured by {name} ({'higher' if higher else 'lower'} is better)"
                   + ("" if facts["labels"] else "; no labels in the data, so fidelity to the float model only")
                   + ", and fidelity to the float model (SNR, cosine, max error).")
    if facts["notes"]:
        st.caption(" ".join(facts["notes"]))
    if facts["examples"]:
        st.markdown("**Examples** (one per class, from the test split)")
        for column, image, label in zip(st.columns(10), facts["examples"], facts["example_labels"]):
            column.image(image, caption=f"class {label}", width=64, clamp=True)


def stop_on_the_model(problem):
    """Say that the model cannot be used, and why; nothing below it runs."""
    _selection.refuse("model", _selection.model_ref(), str(problem))
    st.error(f"Model: {_shared.literal(problem)} Choose or upload another model above; nothing can run on this one.",
             icon=":material/error:")
    st.stop()


st.title("Model & data")
st.caption("Choose what to optimize. The built-in digits model and data work offline and are chosen by default.")

model_column, data_column = st.columns(2, gap="large")
with model_column:
    st.subheader("Model")
    try:
        model_choice = model_ui()
        demos_ui()
    except InputError as problem:
        st.error(f"{problem} Choose another file.", icon=":material/error:")
        model_choice = None
with data_column:
    st.subheader("Dataset")
    try:
        data_choice = data_ui()
    except InputError as problem:
        st.error(f"{problem} Choose another file.", icon=":material/error:")
        data_choice = None

st.session_state["app_trusted"] = bool(st.session_state["data_model_source"] == "upload"
                                       and models.trusted_loading_allowed()
                                       and st.session_state["data_trusted"])
if model_choice:
    _selection.select_model(*model_choice)
if data_choice:
    _selection.select_data(*data_choice)

st.divider()
st.subheader("Summary")
try:
    model_source = models.resolve(_selection.model_ref())
except InputError as problem:
    _selection.refuse("model", _selection.model_ref(), str(problem))
    st.error(f"Model: {_shared.literal(problem)} Choose another model above.", icon=":material/error:")
    st.stop()
try:
    data_source, data_problem = data_refs.resolve(_selection.data_ref()), None
except InputError as problem:
    data_source, data_problem = None, str(problem)
asked_task = _selection.task()
try:
    with st.spinner("Loading the model and the dataset (in a process of their own, which starts TensorFlow)…"):
        if data_source is None:
            both = {"model": _uploads.model_summary(_selection.model_ref(), model_source.fingerprint,
                                                    _selection.trusted())}
        else:  # both with one start of TensorFlow
            both = _uploads.summaries(_selection.model_ref(), model_source.fingerprint, _selection.trusted(),
                                      _selection.data_ref(), data_source.fingerprint, task=asked_task)
    model_facts = both["model"]
except InputError as problem:
    stop_on_the_model(problem)
_selection.accept("model")
model_facts_ui(model_facts)
task_ui(model_facts)
if data_source is not None and _selection.task() != asked_task:
    # The task was just set for this model's outputs: read the data for it, with the call the next rerun
    # makes (so that one finds it cached).
    try:
        with st.spinner("Reading the model and the dataset for this task…"):
            both = _uploads.summaries(_selection.model_ref(), model_source.fingerprint, _selection.trusted(),
                                      _selection.data_ref(), data_source.fingerprint, task=_selection.task())
    except InputError as problem:  # the model's side (out of memory, a crash): not the data's fault
        stop_on_the_model(problem)

try:
    if data_problem:
        raise InputError(data_problem)
    if "data_problem" in both:
        raise InputError(both["data_problem"])
    else:
        data_facts = both["data"]
except InputError as problem:
    _selection.refuse("data", _selection.data_ref(), str(problem))
    st.error(f"Dataset: {problem} Choose other data above, or a model that fits it; nothing can run on this "
             "pair.", icon=":material/error:")
    st.stop()
_selection.accept("data")
data_facts_ui(data_facts)

st.success("Model and data fit together. Next: choose schemes and run them.", icon=":material/check:")
st.page_link("pages/optimize.py", label="Go to Optimize", icon=":material/arrow_forward:")
