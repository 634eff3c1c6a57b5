"""What people see: Plotly figures and generated code (pure functions of results)."""
