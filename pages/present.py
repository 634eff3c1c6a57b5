"""Present: one model's story in large type for a projector — the baseline, what was tried, the trade-off, the verdict."""

import streamlit as st

from optlib.analysis import explain, quality, report
from optlib.analysis.verdict import verdict
from optlib.units import format_bytes
from optlib.views import charts
from pages import _results, _selection, _shared, _state

_state.through_router(__file__)

# Large type for a room: read from the back row of a class at 1024 px as well as 1920 px.
LARGE_TYPE = """<style>
[data-testid="stMainBlockContainer"] p, [data-testid="stMainBlockContainer"] li { font-size: 1.45rem; }
[data-testid="stMainBlockContainer"] h1 { font-size: 3.2rem; }
[data-testid="stMainBlockContainer"] h2 { font-size: 2.3rem; }
[data-testid="stMainBlockContainer"] [data-testid="stMetricValue"] p { font-size: 2.4rem; line-height: 1.2; }
[data-testid="stMainBlockContainer"] [data-testid="stMetricLabel"] p { font-size: 1.3rem; }
</style>"""
CHART_FONT = 18


def choose_model_ui(runs):
    """The model and dataset of the story: the current ones if they have runs, else the first stored."""
    pairs = list(dict.fromkeys(zip(runs["model"], runs["dataset"])))
    current = [pair for pair in pairs if pair[0] == _selection.model_name()]
    _shared.keep_choice("present_pair", pairs)
    if "present_pair" not in st.session_state:
        st.session_state["present_pair"] = (current or pairs)[0]
    return st.selectbox("Model and data", pairs, format_func=lambda pair: f"{pair[0]} on {pair[1]}",
                        key="present_pair", label_visibility="collapsed")


def baseline_ui(base):
    st.header("1 · The model as it is")
    measured = quality.figure(base) is not None  # an untrained or unlabelled model has no metric: no empty tile
    tiles = st.columns(3 if measured else 2)
    if measured:
        tiles[0].metric(quality.name(base) if quality.is_percent(base) else quality.label(base), quality.figure(base))
    size, latency = tiles[-2:]
    size.metric("Download (gzipped)", format_bytes(base["gzip_bytes"]))
    latency.metric("Latency", f"{base['latency_ms']:.3g} ms")
    st.caption(f"float32, measured on this machine (run #{int(base['id'])}); latency is the median of one "
               "inference at a time.")
    if not measured:
        note = base.get("accuracy_note")
        st.info(f"No accuracy for this model ({note if isinstance(note, str) and note else 'not measured'}): "
                "the story is its size and speed, and how closely each scheme follows the float model.",
                icon=":material/info:")


def tried_ui(view):
    st.header("2 · What we tried")
    for _, row in view[view["scheme"].ne("float32")].iterrows():
        st.markdown(f"- **{row['scheme']}** — {row['title']}")


def tradeoff_axis(view):
    """The trade-off's quality axis: the task's metric; without one (untrained, unlabelled), fidelity to the float
    model; None when neither was measured."""
    for column in (charts.quality_column(view), "fidelity_snr_db", "fidelity_top1_agreement"):
        if column in view and view[column].notna().any():
            return column
    return None


def tradeoff_ui(view):
    st.header("3 · The trade-off")
    y = tradeoff_axis(view)
    if y is None:
        st.info("No quality figure was measured for these runs: compare their size and latency on Compare.",
                icon=":material/info:")
        return
    figure = charts.scatter(view, x="gzip_mb", y=y)
    figure.update_layout(font={"size": CHART_FONT}, height=640)
    st.plotly_chart(figure, key="present_tradeoff_chart", theme=None)  # its own large type, not the page theme's


def verdict_ui(view):
    st.header("4 · The verdict")
    for line in verdict(view):
        (st.success if line.scheme else st.info)(line.sentence, icon=":material/gavel:")


st.html(LARGE_TYPE)
st.title("Present")
runs = _results.stored_runs_or_stop("Nothing to present yet: run a few schemes on Optimize first.")
ok = runs[runs["status"].eq("ok")]
if ok.empty:
    st.info("No finished run to present yet.", icon=":material/info:")
    st.stop()
model, dataset = choose_model_ui(ok)
view = report.latest(ok[ok["model"].eq(model) & ok["dataset"].eq(dataset)])
base = view[view["scheme"].eq("float32")]
if base.empty:
    st.warning(f"{model} on {dataset} has no float32 run: run float32 on Optimize to give the story its baseline.",
               icon=":material/warning:")
    st.stop()
for warning in explain.chance_baselines(view):
    st.warning(warning, icon=":material/casino:")
baseline_ui(base.iloc[0])
tried_ui(view)
tradeoff_ui(view)
verdict_ui(view)
st.caption("Collapse the sidebar («) and press F11 for full screen. The Wizard's decision tree, shown as "
           "“Your path”, reads at this size too.")
