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


def changed_settings(run):
    """The settings a run changed from its scheme's defaults (e.g. 'int8_io=True'), so two int8 runs read apart."""
    from optlib.engine import schemes

    settings = run.get("settings")
    if run["scheme"] not in schemes.SCHEMES or not isinstance(settings, dict):
        return ""
    defaults = schemes.settings_for(run["scheme"])
    return ", ".join(f"{name}={value}" for name, value in settings.items()
                     if name in defaults and value != defaults[name] and name not in ("runs", "warmup", "threads"))


def matrix(df):
    """One row per run, one column per target (yes / no with the reason), and the microcontroller's figures."""
    rows = []
    for _, run in df.iterrows():
        found = run.get("targets") if isinstance(run.get("targets"), dict) else {}
        micro = found.get("micro") or {}
        row = {"Run": run["id"], "Model": run["model"], "Scheme": run["scheme"], "Settings": changed_settings(run)}
        row.update({label: verdict(found.get(name)) for name, label in TARGETS.items()})
        row.update({"TFLM arena": format_bytes(micro.get("arena_bytes")) if micro.get("arena_bytes") else "—",
                    "Flash": format_bytes(micro.get("flash_bytes")) if micro.get("flash_bytes") else "—",
                    "TFLM top-1": micro.get("accuracy"), "LiteRT top-1 (same inputs)": micro.get("litert_accuracy"),
                    # Not a classifier (a regression model): how far TFLM's outputs are from LiteRT's.
                    "TFLM vs LiteRT, max abs diff": micro.get("max_abs_diff"), "TFLM inputs": micro.get("samples")})
        rows.append(row)
    columns = ["Run", "Model", "Scheme", "Settings", *TARGETS.values(), "TFLM arena", "Flash", "TFLM top-1",
               "LiteRT top-1 (same inputs)", "TFLM vs LiteRT, max abs diff", "TFLM inputs"]
    return pd.DataFrame(rows, columns=columns)


def runs_on(df, device):
    """The runs of ``df`` that run on ``device`` (:func:`optlib.engine.targets.parse_device`)."""
    if df.empty:
        return df
    keep = df["targets"].map(lambda found: fits(found if isinstance(found, dict) else None, device)[0])
    return df[keep.astype(bool)]


# The wizard's hardware answers and the target that measures each.
HARDWARE_TARGET = {"cpu": "cpu", "gpu": "gpu", "android_gpu": "gpu", "edgetpu": "integer_only",
                   "hexagon": "integer_only", "microcontroller": "micro"}


def for_hardware(found, hardware):
    """(runs: True/False/None, one line) saying whether a run's measured targets suit the wizard's ``hardware``."""
    name = HARDWARE_TARGET.get(hardware)
    if name is None:
        return None, ""
    entry = (found or {}).get(name) if isinstance(found, dict) else None
    label = TARGETS[name]
    if not entry:
        return None, f"{label}: {NOT_CHECKED}"
    if entry.get("runs") is None:
        return None, f"{label}: {verdict(entry)}"
    if not entry["runs"]:
        return False, f"{label}: no — {entry.get('reason') or 'no reason recorded'}"
    details = {
        "micro": lambda: ", ".join(part for part in (
            f"arena {format_bytes(entry.get('arena_bytes'))}" if entry.get("arena_bytes") else "",
            f"flash {format_bytes(entry.get('flash_bytes'))}" if entry.get("flash_bytes") else "",
            f"top-1 {entry['accuracy']:.1%} on {entry.get('samples')} inputs" if entry.get("accuracy") is not None
            else "") if part),
        "gpu": lambda: f"all {entry.get('ops')} ops on the delegate's list" if entry.get("ops") else "",
        "integer_only": lambda: f"{entry.get('input_type')} in, {entry.get('output_type')} out; a static check",
        "cpu": lambda: "ran on LiteRT",
    }[name]()
    return True, f"{label}: yes" + (f" ({details})" if details else "")
