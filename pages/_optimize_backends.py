"""Optimize: LiteRT Quantizer's schemes, the second backend (left out of the families and "Everything")."""

import streamlit as st

from optlib.engine import schemes
from pages import _state


BACKEND = "LiteRT Quantizer"


def lq_names():
    return [scheme.name for scheme in schemes.list_schemes(backend="litert-quantizer", variants=True)]


def lq_schemes_ui(form="keras"):
    """Checkboxes for the LiteRT Quantizer schemes (disabled, saying why, where a model of ``form`` cannot take
    them); return the selected names in registry order."""
    names = lq_names()
    chosen = [name for name in names if st.session_state.get(_state.scheme_key(name))]
    label = f"{BACKEND}: quantize the float32 model by recipe" + (f" ({len(chosen)} selected)" if chosen else "")
    with st.expander(label, icon=":material/tune:", expanded=bool(chosen) or form == "tflite"):
        st.caption("The second backend: one float32 conversion per model, then each recipe quantizes it without "
                   "converting again; Compare shows the times measured (static recipes calibrate on the same sample as int8). int4 and blockwise int4 go past int8's "
                   "4x. Not part of “Everything”: tick them here.")
        columns = st.columns(2)
        for number, name in enumerate(names):
            scheme, key = schemes.get(name), _state.scheme_key(name)
            why_not = schemes.refusal(name, form)
            if why_not and st.session_state.get(key):
                st.session_state[key] = False
            # The box names the backend: each label says the recipe, whole (wrapped, never cut with an ellipsis:
            # a column is a quarter of a 1024 px window).
            columns[number % 2].checkbox(f"{scheme.title.removeprefix(BACKEND).strip()} (`{name}`)", key=key,
                                         disabled=bool(why_not), wrap=True,
                                         help=f"{scheme.title}. " + (f"Not for this model: {why_not}." if why_not
                                                                      else scheme.summary))
    return [name for name in names if st.session_state.get(_state.scheme_key(name))]
