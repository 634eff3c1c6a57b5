"""The dashboard's pages; app.py routes between them with st.navigation."""
