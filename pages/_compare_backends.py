"""Compare: the backend filter, and the same quantization through TFLiteConverter and LiteRT Quantizer."""

import plotly.express as px
import streamlit as st

from optlib.analysis import backends, quality
from optlib.engine import schemes
from pages import _shared

CHOICES = {"all": "Both backends", **schemes.BACKENDS}
FORMATS = {
    "size_mb": st.column_config.NumberColumn("Size (MB)", format="%.3f"),
    "accuracy": st.column_config.NumberColumn("Top-1", format="percent"),
    "metric_name": st.column_config.TextColumn("Metric"),
    "metric_value": st.column_config.NumberColumn("Value", format="%.4g"),
    "latency_ms": st.column_config.NumberColumn("Latency (ms)", format="%.4g"),
    "build_s": st.column_config.NumberColumn("Job (s)", format="%.2f",
                                             help="The job's wall time. A LiteRT Quantizer job includes the float32 "
                                                  "conversion only if it made it (the first to need it)"),
    "from_keras_s": st.column_config.NumberColumn("Keras model → file (s)", format="%.2f",
                                                  help="TFLiteConverter: its build. LiteRT Quantizer: the float32 "
                                                       "conversion plus calibration and quantization"),
    "quantize_s": st.column_config.NumberColumn("Calibrate + quantize (s)", format="%.2f"),
    "float32_convert_s": st.column_config.NumberColumn("Shared float32 conversion (s)", format="%.2f"),
    "build_ratio": st.column_config.NumberColumn("Converter ÷ this, Keras model → file", format="%.2f×"),
    "id": st.column_config.NumberColumn("Run", format="%d"),
}


def backend_filter_ui(view):
    """A backend filter over the runs shown; return the runs it keeps (float32, both backends' start, stays)."""
    choice = st.segmented_control("Backend", list(CHOICES), format_func=CHOICES.get, key="compare_backend",
                                  default="all")
    if choice in (None, "all"):
        return view
    return view[view["backend"].eq(choice) | view["scheme"].eq("float32")]


def both_backends_ui(view):
    """Each quantization made by both backends: size, accuracy, latency and build time side by side."""
    st.subheader("The same quantization through both backends")
    st.caption("TFLiteConverter quantizes while it converts the Keras model; LiteRT Quantizer quantizes the "
               "float32 conversion, made once per model and shared by all its schemes (its time is shown apart).")
    table = quality.in_table_units(backends.side_by_side(view))  # accuracies in percent, as everywhere
    missing = backends.missing_counterparts(view)
    if not table["backend"].eq(schemes.BACKENDS["litert-quantizer"]).any():
        st.info("No LiteRT Quantizer run of a quantization both backends make (int8, int16x8, dynamic) is shown. "
                "Tick for example lq_int8 under LiteRT Quantizer on Optimize, beside int8.", icon=":material/info:")
        return
    if missing:
        st.caption(f"Run **{', '.join(missing)}** to complete the pairs.")
    chart = px.bar(table, x="quantization", y="from_keras_s", color="backend", barmode="group", facet_col="model",
                   labels={"from_keras_s": "Keras model → file (s)", "quantization": "Quantization",
                           "backend": "Backend"},
                   color_discrete_map={"TFLiteConverter": "#2ca02c", "LiteRT Quantizer": "#08519c"},
                   hover_data=["scheme", "id", "size_mb", "metric_name", "metric_value", "latency_ms"])
    chart.update_layout(height=320, margin={"t": 40, "b": 10})
    st.plotly_chart(chart, key="compare_backends_chart")
    st.dataframe(table, hide_index=True, column_config=FORMATS, placeholder=_shared.GAP)
