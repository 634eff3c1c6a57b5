"""Wizard: what you have and what you need, walked down the decision tree to a ranked set of schemes."""

import math

import streamlit as st

from optlib.analysis import explain, quality, report, where
from optlib.engine import schemes
from optlib.guide import counterparts, wizard
from optlib.inputs import data_refs, models
from optlib.errors import InputError
from optlib.units import format_bytes
from pages import _results, _selection, _state

_state.through_router(__file__)

# The questions without a default are asked on every visit (warnings use them even off the
# path); the refinements with a default only when the path of the answers reaches them.
REQUIRED = tuple(question for question in wizard.QUESTIONS if question.default is None)
ROLES = {"primary": ":orange-badge[Try first]", "follow-up": ":blue-badge[Next, if it falls short]",
         "alternative": ":gray-badge[Another trade-off]"}


def answer_key(question_id):
    return f"wizard_answer_{question_id}"


def question_ui(question):
    """One question as radio buttons; return the chosen value, or None while it is unanswered."""
    return st.radio(question.text, question.values, format_func=dict(question.options).get,
                    index=question.values.index(question.default) if question.default else None,
                    key=answer_key(question.id), help=question.help, persist_state="session")


def answers_ui():
    """Ask what they have and need, then what this path needs besides; return {question id: value or None}."""
    answers = {}
    for column, question in zip(st.columns(len(REQUIRED)), REQUIRED):
        with column.container(border=True):
            answers[question.id] = question_ui(question)
    if None in answers.values():
        return answers
    question = wizard.next_question(answers)
    if question is not None:
        st.markdown("**Your answers lead on to**")
        columns = iter(st.columns(len(wizard.QUESTIONS) - len(REQUIRED)))
        while question is not None:
            with next(columns).container(border=True):
                answers[question.id] = question_ui(question)
            question = wizard.next_question(answers)
    return answers


@st.cache_data(show_spinner=False, max_entries=16, ttl=60)
def sources(model_ref, data_ref):
    """The model file and dataset of this selection, with their fingerprints (a big file takes a moment;
    a zoo model's changes when its ImageNet weights arrive, hence the minute's time to live)."""
    return models.resolve(model_ref), data_refs.resolve(data_ref)


def measured_runs():
    """The newest finished run per scheme of the current model file and dataset, as {scheme: row}."""
    try:
        model_src, data_src = sources(_selection.model_ref(), _selection.data_ref())
    except InputError:
        return {}  # the selection cannot be used; the Model & data page says why
    runs = _results.filter_runs(report.of_files(_results.stored_runs(), model_src, data_src))
    return {row["scheme"]: row for row in report.latest(runs).to_dict("records")}


def shown(value, pattern):
    """A figure as text, or None when it is missing (NaN): no baseline, or an untrained model."""
    return None if value is None or math.isnan(value) else pattern.format(value)


def measured_ui(row):
    """The stored figures of one scheme on the current model and dataset, or a note that there are none."""
    if row is None:
        st.caption(f":material/hourglass_empty: Not measured yet on **{_selection.model_label()}** with "
                   f"**{_selection.data_label()}**: send it to Optimize and run it.")
        return
    top1, size = st.columns(2)
    latency, gzip = st.columns(2)
    percent = quality.is_percent(row)
    top1.metric(quality.short_name(row).capitalize() if percent else quality.name(row), quality.figure(row) or "n/a",
                shown(row["metric_delta"] * (100 if percent else 1), "{:+.2f} pp" if percent else "{:+.3g}"),
                delta_arrow="off",
                delta_color="normal" if quality.higher_is_better(row) else "inverse")
    size.metric("Size", format_bytes(row["size_bytes"]), shown(row["size_ratio"], "{:.1f}× smaller"),
                delta_color="off", delta_arrow="off")
    latency.metric("Latency", shown(row["latency_ms"], "{:.3f} ms") or "n/a",
                   explain.speed_phrase(row["speedup"]), delta_color="off", delta_arrow="off")
    gzip.metric("Gzip size", format_bytes(row["gzip_bytes"]), shown(row["gzip_ratio"], "{:.1f}× smaller"),
                delta_color="off", delta_arrow="off")
    baseline = "" if math.isnan(row["size_ratio"]) else "; changes against float32"
    st.caption(f":material/database: Run #{row['id']} · {row['model']} · {row['dataset']} (the newest finished "
               f"run{baseline})")


def target_ui(row, hardware):
    """Whether the measured run suits the chosen hardware, from its measured targets (engine.targets)."""
    if row is None:
        return
    runs, line = where.for_hardware(row.get("targets"), hardware)
    if line:
        icon = {True: ":material/check_circle:", False: ":material/block:"}.get(runs, ":material/help:")
        st.caption(f"{icon} Measured for your hardware — {line}")


def item_ui(rank, item, row, hardware=None):
    """One recommended scheme: what it is, why, what to expect, where the advice comes from, what it measured."""
    with st.container(border=True):
        advice, figures = st.columns([3, 2], gap="medium")
        with advice:
            st.markdown(f"#### {rank}. {schemes.get(item.scheme).title} `{item.scheme}` {ROLES[item.role]}")
            st.markdown(f"**Why:** {item.reason}")
            st.markdown(f"**Trade-off:** {item.tradeoff}")
            st.caption(f":material/menu_book: From {source_text(item.source)}")
            lq = counterparts.counterpart(item.scheme)
            if lq:
                st.markdown(f"**LiteRT Quantizer counterpart:** `{lq.scheme}`. Prefer it: {lq.prefer}")
        with figures:
            measured_ui(row)
            target_ui(row, hardware)


def source_text(source):
    """A cited document as Markdown: its title in italics, a link when it has a web address."""
    title, url = wizard.SOURCES[source]
    return f"[*{title}*]({url})" if url else f"*{title}*"


def send_to_optimize(names, settings):
    """Button callback: select exactly ``names`` on the Optimize page and set what the target needs."""
    for name in schemes.names():
        st.session_state[_state.scheme_key(name)] = name in names
    for name, value in settings.items():
        st.session_state[_state.param_key(name)] = value


def with_baseline(names):
    """float32 first, then the recommended schemes: every change is measured against the unoptimized model."""
    return list(dict.fromkeys(["float32", *names]))


def changed_settings(settings):
    """The target's settings that differ from their defaults (what Optimize would pass for them)."""
    defaults = {param.name: param.default for name in schemes.names() for param in schemes.params_of(name)}
    return {name: value for name, value in settings.items() if defaults.get(name) != value}


def run_ui(names, settings):
    """Say exactly what will run, then run it now (progress on Optimize) or send it to Optimize to adjust first."""
    to_run = with_baseline(names)
    needs = ", ".join(f"`{name}={str(value).lower()}`" for name, value in settings.items())
    st.markdown(f"**Runs** {', '.join(f'`{name}`' for name in to_run)} on **{_selection.model_label()}** with "
                f"**{_selection.data_label()}** — float32 is the baseline every figure is compared with"
                + (f"; with {needs}: this hardware runs integer-only models with integer input and output."
                   if needs else "; every setting at its default."))
    blocked = _selection.run_blocked_reason()
    run, send = st.columns(2)
    if run.button(f"Run these {len(to_run)} now", type="primary", icon=":material/play_arrow:",
                  key="wizard_run_button", disabled=bool(blocked), help=blocked or "Runs in the background; "
                  "its progress is on Optimize, and other pages stay usable meanwhile.", width="stretch"):
        send_to_optimize(to_run, settings)  # Optimize shows the same selection beside the progress
        _selection.start_sweep(to_run, changed_settings(settings))
        st.switch_page("pages/optimize.py", query_params=st.query_params.to_dict())  # keeps ?job=: a reload finds it
    if send.button(f"Send these {len(to_run)} to Optimize", icon=":material/arrow_forward:", key="wizard_send_button",
                   on_click=send_to_optimize, args=(to_run, settings), width="stretch",
                   help="Selects exactly these schemes and settings on Optimize, to change something before running."):
        st.switch_page("pages/optimize.py")


def use_sequence_demo():
    """Button callback: the built-in sequence demo (an LSTM over digit rows) and its data."""
    from optlib.inputs import models

    st.session_state.update({"data_model_source": "zoo", "data_zoo_model": "digits_lstm",
                             "data_data_source": models.DEMO_DATA["digits_lstm"], "app_task": "auto",
                             "data_task": "auto"})
    _selection.select_model("digits_lstm")
    _selection.select_data(models.DEMO_DATA["digits_lstm"])


def sequence_demo_ui():
    """For activation-sensitive models: try the schemes on a built-in sequence model first."""
    st.markdown(":material/graphic_eq: No speech or language model at hand? The built-in **sequence demo** is "
                "an LSTM reading each handwritten digit row by row (8 steps of 8 features): recurrent activations "
                "are where int16 activations can matter. Table 1 & 2 shows its float32, int8 and int16 "
                "activations side by side.")
    st.button("Use the sequence demo", key="wizard_sequence_demo_button", icon=":material/play_circle:",
              on_click=use_sequence_demo)


def whole_tree_ui(answers):
    """The whole tree in parts legible at 1024 px: one fold per answer about data (the one your answers take
    open), and in it one drawing per answer about hardware (a leaf reached directly is one line)."""
    parts = wizard.branches(answers)
    for data_answer in dict.fromkeys(part.data for part in parts):
        mine = [part for part in parts if part.data == data_answer]
        taken = any(part.taken for part in mine)
        with st.expander(f"Data you have: {data_answer}" + (" — your answers" if taken else ""), expanded=taken,
                         icon=":material/account_tree:"):
            for part in mine:
                mark = " :orange-badge[your answers]" if part.taken else ""
                if part.schemes:
                    st.markdown(f"**Runs on {part.hardware}** → {' · '.join(f'`{n}`' for n in part.schemes)}{mark}")
                else:
                    st.markdown(f"**Runs on {part.hardware}**{mark}")
                    st.graphviz_chart(wizard.to_dot(answers, root=part.node), width="content")


def tree_ui(answers):
    st.subheader("The decision tree")
    st.caption("Orange: the path your answers take. Each leaf lists its schemes in rank order. The tree follows "
               "the TensorFlow Lite model optimization guide and its post-training quantization advice.")
    whole = st.toggle("Show the whole tree", key="wizard_whole_tree")
    if not whole:
        st.caption("Your path, legible on a projector. Dashed boxes: the branches your answers did not take, "
                   "folded; “Show the whole tree” opens them.")
        st.graphviz_chart(wizard.to_dot(answers, path_only=True), width="stretch")
        return
    st.caption("The whole tree, a part for each answer about data and about hardware, so its words stay "
               "legible on a projector.")
    whole_tree_ui(answers)


st.title("Scheme wizard")
st.markdown("Say what you have and what you need. The wizard walks the decision tree of the TensorFlow Lite "
            "optimization guides and ends with a ranked set of schemes — why each one, the trade-off to "
            "expect, and the figures already measured for your model — ready to run on the Optimize page.")

st.subheader("Your situation")
answers = answers_ui()
if None in answers.values():
    st.info("Answer the three questions above to see which schemes to try.", icon=":material/info:")
    tree_ui(answers)
    st.stop()
try:
    recommendation = wizard.recommend(answers)
except ValueError as problem:
    st.error(f"{problem} Choose one of the answers above.", icon=":material/error:")
    st.stop()
names = wizard.schemes(recommendation)

st.subheader("Recommendation")
measured = measured_runs()
for rank, item in enumerate(recommendation.items, 1):
    item_ui(rank, item, measured.get(item.scheme), answers.get("hardware"))
int4 = counterparts.extra_for(answers)
if int4:
    with st.container(border=True):
        st.markdown(f"#### {schemes.get(int4.scheme).title} `{int4.scheme}` (LiteRT Quantizer)")
        st.markdown(f"**When:** {int4.prefer} Tick it under *LiteRT Quantizer* on the Optimize page.")
        measured_ui(measured.get(int4.scheme))
for warning in recommendation.warnings:
    st.warning(warning, icon=":material/warning:")
if answers.get("activation_sensitive") == "yes" and _selection.model_ref() != "digits_lstm":
    sequence_demo_ui()

run_ui(names, recommendation.settings)

tree_ui(answers)
