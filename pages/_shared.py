"""Small helpers every page uses: the gap mark, kept choices, Markdown-safe text, refusals kept as answers
and an engine error in words.

What else the pages share has a module of its own: session state (``_state.py``), the current selection
and this session's background work (``_selection.py``), the sidebar (``_sidebar.py``) and stored results
(``_results.py``). Nothing here imports TensorFlow at import time: the Home page must appear fast.
"""

import streamlit as st

from optlib.errors import InputError

GAP = "—"  # what every table shows for a figure that is missing (never "None"; a Note column says why)


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
