"""Where each result runs, as a table: results x targets, yes or no with the reason.

Reads the ``targets`` column of the results frame (:func:`optlib.analysis.report.frame`),
which the job measured (:mod:`optlib.engine.targets`).
"""

import pandas as pd

from optlib.engine.targets import TARGETS, fits
from optlib.units import format_bytes

NOT_CHECKED = "not checked (run before targets were measured)"


def verdict(entry):
    """'yes', 'no: why' or 'check failed: why' for one target entry (None: not checked)."""
    if not entry:
        return NOT_CHECKED
    if entry.get("runs") is None:
        return f"check failed: {entry.get('reason')}"
    return "yes" if entry["runs"] else f"no: {entry.get('reason') or 'no reason recorded'}"


def matrix(df):
    """One row per run, one column per target (yes / no with the reason), and the microcontroller's figures."""
    rows = []
    for _, run in df.iterrows():
        found = run.get("targets") if isinstance(run.get("targets"), dict) else {}
        micro = found.get("micro") or {}
        row = {"Run": run["id"], "Model": run["model"], "Scheme": run["scheme"]}
        row.update({label: verdict(found.get(name)) for name, label in TARGETS.items()})
        row.update({"TFLM arena": format_bytes(micro.get("arena_bytes")) if micro.get("arena_bytes") else "—",
                    "Flash": format_bytes(micro.get("flash_bytes")) if micro.get("flash_bytes") else "—",
                    "TFLM top-1": micro.get("accuracy"), "LiteRT top-1 (same inputs)": micro.get("litert_accuracy"),
                    "TFLM inputs": micro.get("samples")})
        rows.append(row)
    columns = ["Run", "Model", "Scheme", *TARGETS.values(), "TFLM arena", "Flash", "TFLM top-1",
               "LiteRT top-1 (same inputs)", "TFLM inputs"]
    return pd.DataFrame(rows, columns=columns)


def runs_on(df, device):
    """The runs of ``df`` that run on ``device`` (:func:`optlib.engine.targets.parse_device`)."""
    if df.empty:
        return df
    keep = df["targets"].map(lambda found: fits(found if isinstance(found, dict) else None, device)[0])
    return df[keep.astype(bool)]
