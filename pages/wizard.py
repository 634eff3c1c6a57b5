"""Wizard: placeholder until its issue lands."""

import streamlit as st

from pages import _shared

_shared.through_router(__file__)

st.title("Wizard")
st.info("This page is being built.")
