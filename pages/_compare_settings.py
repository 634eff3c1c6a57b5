"""Compare's section for grids of settings: size and accuracy against a setting's values."""

import streamlit as st

from optlib.views import settings_charts


def against_setting_ui(view):
    """Draw 'Against a setting' when some scheme ran at several values of a setting (a grid sweep)."""
    names = settings_charts.varying(view)
    if not names:
        return
    st.subheader("Against a setting")
    st.caption("Runs of one scheme at several values of a setting (a grid: several comma-separated values on "
               "Optimize, or `--param prune.sparsity=0.3,0.5,0.7,0.9`).")
    preferred = next((name for name in ("sparsity", "clusters") if name in names), names[0])
    setting = st.selectbox("Setting", names, index=names.index(preferred), key="compare_setting")
    # The gzipped size: pruning and clustering leave the file's size alone and shrink only what is downloaded.
    # One chart per row, as the page's others.
    st.plotly_chart(settings_charts.against(view, setting, "gzip_mb"), key="compare_setting_size_chart")
    st.plotly_chart(settings_charts.against(view, setting, "metric"), key="compare_setting_accuracy_chart")
