"""The optlib dashboard: a router over the pages in pages/ and the shared sidebar.

Start it with ``streamlit run app.py``.
"""

from pathlib import Path

import streamlit as st

from pages import _sidebar, _state

PAGES = Path(__file__).parent / "pages"
FAVICON = Path(__file__).parent / "assets" / "favicon.png"  # shipped: nothing is fetched to draw it


@st.cache_resource(show_spinner=False)
def _children_starter():
    """The engine's child processes are forked from one that has imported TensorFlow: start it with the
    server, so the first sweep or model description does not wait for it."""
    from optlib.engine import processes

    processes.prestart()


def main():
    st.set_page_config(page_title="optlib — TFLite model optimization", page_icon=str(FAVICON),
                       layout="wide")
    _children_starter()
    _state.init_state()
    navigation = st.navigation({
        "Start": [
            st.Page(PAGES / "home.py", title="Home", icon=":material/home:", default=True),
            st.Page(PAGES / "present.py", title="Present", icon=":material/co_present:"),
        ],
        "Work": [
            st.Page(PAGES / "model_data.py", title="Model & data", icon=":material/dataset:"),
            st.Page(PAGES / "optimize.py", title="Optimize", icon=":material/tune:"),
            st.Page(PAGES / "compare.py", title="Compare", icon=":material/monitoring:"),
            st.Page(PAGES / "export.py", title="Export", icon=":material/download:"),
        ],
        "Guide": [
            st.Page(PAGES / "wizard.py", title="Wizard", icon=":material/alt_route:"),
            st.Page(PAGES / "tables.py", title="Table 1 & 2", icon=":material/table_chart:"),
        ],
        "Beyond the guide": [
            st.Page(PAGES / "insight.py", title="Layer insight & search", icon=":material/troubleshoot:"),
        ],
    })
    _state.follow_entry_page()
    _sidebar.sidebar()
    navigation.run()


# Streamlit runs this script as __main__; imported (by a test, say), it draws nothing.
if __name__ == "__main__":
    main()
