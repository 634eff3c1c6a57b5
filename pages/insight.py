"""Layer insight & search: placeholder until its issue lands."""

import streamlit as st

from pages import _shared

_shared.through_router(__file__)

st.title("Layer insight & search")
st.info("This page is being built.")
