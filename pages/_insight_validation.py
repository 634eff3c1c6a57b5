"""Layer insight: LiteRT Quantizer's per-tensor validation of a stored quantized run, beside the channel error."""

import pandas as pd
import streamlit as st

from optlib.analysis import validation
from optlib.analysis.insight import newest_runs
from optlib.errors import InputError
from optlib.views.insight_charts import short_name
from pages import _results, _selection, _shared

FORMATS = {"MSE": "{:.3e}", "SNR (dB)": "{:.1f}", "Cosine similarity": "{:.5f}", "Channel error": "{:.3g}"}
KINDS = {"input": "input", "constant": "weights / constant", "intermediate": "layer output", "output": "output"}


@st.cache_data(show_spinner=False, max_entries=16)
def outcome_of(model_ref, data_ref, scheme, run_id, store, trusted):
    """The validation of one stored run (``run_id`` in the key: a newer run validates anew), as an outcome.

    In a process of its own under the worker memory budget: the server never holds TensorFlow for it. A
    refusal is kept like an answer, so a rerun of the page does not start another process.
    """
    from optlib.engine import isolated

    # The runs are read here; the child, in its sandbox, reads only their files (not the store).
    runs = newest_runs(model_ref, data_ref, ("float32", scheme), store)
    files = tuple(row["tflite_path"] for row in runs.values())
    return _shared.outcome(isolated.call, validation.tensor_report, model_ref, data_ref, scheme, store, trusted,
                           runs=runs, what="The per-tensor validation",
                           touches=isolated.Touches(model_ref, data_ref, files))


def table(rows):
    frame = pd.DataFrame([{"Tensor": short_name(r["tensor"]), "Kind": KINDS.get(r["kind"], r["kind"]),
                           "MSE": r["mse"], "SNR (dB)": r["snr_db"], "Cosine similarity": r["cosine_similarity"],
                           "Channel error": r["channel_error"]} for r in rows])
    return frame


def validation_ui():
    """Pick a stored quantized run (either backend); show the quantizer's MSE, SNR and cosine per tensor."""
    st.markdown("**LiteRT Quantizer's per-tensor validation** — its own comparison of every tensor of a quantized "
                "model with the float32 model on the same inputs (mean squared error, signal-to-noise ratio, "
                "cosine similarity), for a run of either backend, with the channel error beside it. Activations "
                "come first, in graph order; SNR is signal power over error power, in decibels.")
    stored = newest_runs(_selection.model_ref(), _selection.data_ref(), validation.candidates(), _results.store_path())
    if not stored:
        st.info("No quantized run of this model yet: run int8 or an lq_ scheme (LiteRT Quantizer) on Optimize.",
                icon=":material/info:")
        return
    names = list(stored)
    _shared.keep_choice("insight_validate_scheme", names)
    scheme = st.selectbox("Quantized run", names, key="insight_validate_scheme",
                          format_func=lambda n: f"{n} (run #{stored[n]['id']})")
    asked = (_selection.model_ref(), _selection.data_ref(), scheme, stored[scheme]["id"])
    if st.button("Validate tensors", key="insight_validate_button", icon=":material/fact_check:"):
        st.session_state["insight_validated"] = asked
    if st.session_state.get("insight_validated") != asked:
        return
    try:
        with st.spinner(f"Validating {scheme} against float32 with LiteRT Quantizer"):
            result = _shared.answer(outcome_of(*asked[:3], asked[3], str(_results.store_path()), _selection.trusted()))
    except InputError as problem:
        st.warning(str(problem), icon=":material/warning:")
        return
    if result["channel_problem"]:
        st.caption(result["channel_problem"])
    frame = table(result["rows"])
    weakest = frame[frame["Kind"] != "weights / constant"].sort_values("SNR (dB)").head(1)
    if len(weakest):
        st.caption(f"Lowest SNR of an activation: **{weakest.iloc[0]['Tensor']}** at "
                   f"{weakest.iloc[0]['SNR (dB)']:.1f} dB.")
    _results.figures_table(frame, FORMATS)  # "—" where a tensor has no channel error (not a layer's output)
    st.caption(f"{scheme} run #{result['run']['id']} ({result['backend']}) against float32 run "
               f"#{result['float32']['id']} on {result['samples']} inputs; tensors are matched by name, so a "
               "tensor the converter renamed is not listed. Higher SNR and cosine are better.")
