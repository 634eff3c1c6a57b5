"""Compare: where each run runs (the targets matrix) and the 'runs on a microcontroller' filter."""

import streamlit as st

from optlib.analysis import where
from optlib.engine import targets
from optlib.units import KB
from pages import _shared


def runs_on_ui(view):
    """'Runs on: microcontroller with R kB RAM and F kB flash': return the runs that fit (all when off)."""
    left, ram, flash = st.columns([2, 1, 1], vertical_alignment="bottom")
    on = left.toggle("Runs on: a microcontroller with", key="compare_mcu_on",
                     help="Only runs that TensorFlow Lite for Microcontrollers ran with its built-in ops, "
                          "whose measured arena fits the RAM and whose file fits the flash.")
    ram_kb = ram.number_input("kB RAM", min_value=1, value=64, step=16, key="compare_mcu_ram", disabled=not on)
    flash_kb = flash.number_input("kB flash", min_value=1, value=256, step=64, key="compare_mcu_flash",
                                  disabled=not on)
    if not on:
        return view
    device = targets.parse_device(f"mcu:ram={ram_kb}KB,flash={flash_kb}KB")
    fitting = where.runs_on(view, device)
    st.caption(f"{len(fitting)} of {len(view)} finished runs run on {device['label']} "
               f"(1 kB = {KB:,} bytes).")
    return fitting


def matrix_ui(view):
    """Where each run runs: per model a compact yes/no matrix with one plain reason per 'no'; the engine's own
    messages and the microcontroller's figures one click away."""
    st.subheader("Where it runs")
    st.caption("Measured for each run. **GPU**: its ops against the GPU delegate's documented op list "
               "(LiteRT's own analyzer no longer checks). **Integer-only** (Edge TPU, Hexagon DSP, NPUs): a static "
               "check that every op and the input and output are integer; no vendor compiler is run. "
               "**Microcontroller**: run on TensorFlow Lite for Microcontrollers, with the arena it used and the "
               "flash the file needs. **CPU**: ran on LiteRT.")
    for model, table in where.compact(view).items():
        st.markdown(f"**{model}**")
        st.table(table, hide_index=True)
    with st.expander("The engine's own messages, and the microcontroller's accuracy", icon=":material/terminal:"):
        st.caption("Each target's reason as the check recorded it (TensorFlow Lite for Microcontrollers' own "
                   "words), and top-1 on the microcontroller beside LiteRT's on the same inputs (for a model that "
                   "is not a classifier, the largest difference between their outputs).")
        st.dataframe(where.matrix(view), hide_index=True, key="compare_targets_matrix", placeholder=_shared.GAP,
                     column_config={"TFLM top-1": st.column_config.NumberColumn(format="percent"),
                                    "Integer-only accelerator": st.column_config.TextColumn(width="large"),
                                    "Microcontroller (TFLM)": st.column_config.TextColumn(width="large"),
                                    "LiteRT top-1 (same inputs)": st.column_config.NumberColumn(format="percent"),
                                    "TFLM vs LiteRT, max abs diff": st.column_config.NumberColumn(format="%.4g")})
