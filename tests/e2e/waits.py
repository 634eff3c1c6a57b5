"""Waiting for the app as a person does: until it has stopped changing, not for a fixed time."""

# True once the app's script has finished (Streamlit's own end-to-end tests read the same attribute), its
# "Running" widget is gone, every Plotly chart has drawn, and the main column (its size, its elements, its
# text, its charts' widths) has not changed for QUIET_MS.
QUIET_MS = 400
SETTLED = """quiet => {
    const app = document.querySelector('[data-testid="stApp"]');
    const main = document.querySelector('[data-testid="stMain"]');
    const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
    if (!app || !main || app.getAttribute('data-test-script-state') !== 'notRunning'
        || document.querySelector('[data-testid="stStatusWidget"]')
        || charts.some(c => !c.querySelector('.main-svg'))) { window.__settled = null; return false; }
    const now = performance.now();
    const state = [main.scrollHeight, main.getElementsByTagName('*').length, main.innerText.length,
                   ...charts.map(c => Math.round(c.getBoundingClientRect().width))].join('|');
    if (!window.__settled || window.__settled.state !== state) { window.__settled = {state, since: now}; return false; }
    return now - window.__settled.since >= quiet; }"""


def settle(page, timeout_ms=120_000):
    """Wait until the app has finished its rerun and Plotly has drawn (:data:`SETTLED`). The first moment is
    for a click's rerun to reach the server and the app to say it runs."""
    page.evaluate("() => { window.__settled = null; }")  # the quiet is counted from this call, not an earlier one
    page.wait_for_timeout(300)
    page.wait_for_function(SETTLED, arg=QUIET_MS, polling=100, timeout=timeout_ms)
