"""Where each result runs, as a table: results x targets, yes or no with the reason.

Reads the ``targets`` column of the results frame (:func:`optlib.analysis.report.frame`),
which the job measured (:mod:`optlib.engine.targets`).
"""

import re

import pandas as pd

from optlib.analysis import failures
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
    if not schemes.known(run["scheme"]) or not isinstance(settings, dict):
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


# The compact matrix's headers: short enough for four targets side by side in a 1024 px window.
SHORT_TARGETS = {"cpu": "CPU", "gpu": "GPU", "integer_only": "Integer-only", "micro": "Microcontroller"}
FLOAT_NAMES = ("float16", "float32", "float64", "bfloat16")


def _integer_only_words(entry, raw):
    """Why not integer-only, in words: float arithmetic first, else the float input or output."""
    ops = re.search(r"(\d+) of (\d+) ops compute in ([\w/]+)", raw)
    if ops:
        return f"needs integer ops; {ops[1]} of {ops[2]} compute in {ops[3]}"
    taken = entry.get("input_type") or (re.search(r"input is ([\w,]+)", raw) or [None, ""])[1]
    if any(name in taken for name in FLOAT_NAMES):
        return f"needs int8 input; this model takes {taken}"
    given = entry.get("output_type") or (re.search(r"output is ([\w,]+)", raw) or [None, ""])[1]
    if any(name in given for name in FLOAT_NAMES):
        return f"needs int8 output; this model gives {given}"
    return failures.brief(raw)


def _gpu_words(entry, raw):
    """Why not on the GPU delegate, in words: the ops it has no kernel for, or int16 activations."""
    missing = re.search(r"op list: ([^;]+)", raw)
    if missing:
        return f"no GPU kernel for {failures.brief(missing[1], 40)}"
    if "int16 activations" in raw:
        return "needs float or 8-bit; this model has int16 activations"
    return failures.brief(raw)


def _micro_words(entry, raw):
    """Why not on a microcontroller, in words: TFLM's own message through :mod:`failures`, or our cap."""
    over = re.search(r"not run: the model's (.+?) is over the (.+?) this check", raw)
    if over:
        return f"not run: its {over[1]} is over the {over[2]} checked"
    return failures.in_words(raw).short


WORDS = {"integer_only": _integer_only_words, "gpu": _gpu_words, "micro": _micro_words}


def in_words(name, entry):
    """One cell of the compact matrix: 'yes', 'no — a few plain words', 'check failed — ...' or 'not checked'."""
    if not entry:
        return "not checked"
    raw = str(entry.get("reason") or "")
    if entry.get("runs") is None:
        said = re.sub(r"^the .+? check failed: ", "", failures.first_words(raw))
        return f"check failed — {failures.brief(said, 50)}"
    if entry["runs"]:
        if name == "micro" and entry.get("arena_bytes"):
            flash = f", flash {format_bytes(entry['flash_bytes'])}" if entry.get("flash_bytes") else ""
            return f"yes — arena {format_bytes(entry['arena_bytes'])}{flash}"
        return "yes"
    if not raw:
        return "no — no reason recorded"
    return f"no — {WORDS.get(name, lambda e, r: failures.brief(r))(entry, raw)}"


def compact(df):
    """Per model, a yes/no matrix: one row per run (its scheme, and the settings it changed), one column per
    target, one plain-language reason per 'no'. {model: frame}, in the order of ``df``."""
    tables = {}
    for model, runs in df.groupby("model", sort=False):
        rows = []
        for _, run in runs.iterrows():
            found = run.get("targets") if isinstance(run.get("targets"), dict) else {}
            changed = changed_settings(run)
            row = {"Scheme": run["scheme"] + (f" ({changed})" if changed else "")}
            row.update({label: in_words(name, found.get(name)) for name, label in SHORT_TARGETS.items()})
            rows.append(row)
        tables[model] = pd.DataFrame(rows, columns=["Scheme", *SHORT_TARGETS.values()])
    return tables


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
