"""The Export bundle: one zip that carries a result away from this machine.

It holds what someone needs to check or repeat a result elsewhere: the
optimized ``.tflite``, the source Keras model it was made from, the code that
reproduces it, the data recipe, and the measured row (figures, settings, where
and when they were measured), with a README saying what each file is.

    content = bundle.make(row, tflite_bytes, model=Path("model.keras"))

Importing this module does not import TensorFlow; :func:`source_model` does,
for a zoo model that has to be built to be saved.
"""

import io
import json
import re
import time
import zipfile
from pathlib import Path

from optlib.analysis import quality
from optlib.engine.store import flat
from optlib.errors import InputError
from optlib.units import format_bytes

MODEL_FOLDER = "model"
MEASURE_SCRIPT = "measure.py"
READABLE = 0o100644  # a regular file, rw-r--r--: what extracts from the zip for everyone who unpacks it


def _safe(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_.") or "model"


def source_model(ref, fingerprint, folder):
    """The file (or folder) of the Keras model a run started from, as it is now; or ``(None, why not)``.

    Args:
        ref: a zoo name or the path the run's model was loaded from.
        fingerprint: the run's ``model_fingerprint``: a file that changed since is not the source.
        folder: where a zoo model is saved (``<name>.keras``) when it has no file of its own.
    """
    from optlib.inputs import models

    try:
        source = models.resolve(ref)
    except InputError as problem:
        return None, str(problem)
    if source.fingerprint != fingerprint:
        return None, f"the model at {source.name} is not the one this run used (it changed since)"
    if source.path is not None:
        return source.path, ""
    path = Path(folder) / f"{_safe(source.name)}.keras"
    models.load(source).save(str(path))  # a zoo model: built (or read from the zoo cache) and saved as .keras
    return path, ""


def _put(archive, name, content):
    """One file in the zip, extracting as 0644 whatever the mode of what it was read from (an upload is 0600)."""
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = READABLE << 16
    archive.writestr(info, content)


def _add_path(archive, path, name):
    path = Path(path)
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            _put(archive, f"{name}/{file.relative_to(path).as_posix()}", file.read_bytes())
    else:
        _put(archive, name, path.read_bytes())


def _summary(row):
    lines = []
    if quality.value(row) is not None:
        lines.append(f"- {quality.text(row)} on the LiteRT interpreter ({row.get('accuracy_samples', '?')} test "
                     "samples)")
    if row.get("fidelity_snr_db") is not None:
        lines.append(f"- fidelity to the Keras float model: SNR {row['fidelity_snr_db']:.1f} dB")
    if row.get("size_bytes"):
        lines.append(f"- size: {format_bytes(row['size_bytes'])} ({row['size_bytes']:,} bytes), "
                     f"gzipped {format_bytes(row.get('gzip_bytes') or 0)}")
    latency = row.get("latency_ms")
    if isinstance(latency, dict) and latency.get("median") is not None:
        lines.append(f"- latency: median {latency['median']:.3g} ms per inference over "
                     f"{latency.get('runs', '?')} timed invokes, {row.get('threads', '?')} thread(s)")
    if row.get("sparsity") is not None:
        lines.append(f"- sparsity of the weights in the file: {row['sparsity']:.1%}")
    return lines


def _packages(row):
    """What the reproduction script imports, pinned as this project pins them."""
    from optlib.engine import schemes

    packages = ["tensorflow==2.21.0", "tf-keras==2.21.0", "tensorflow-model-optimization==0.8.1", "numpy",
                "scikit-learn"]
    known = schemes.find(row.get("scheme"))
    if known is not None and getattr(known, "backend", "") == "litert-quantizer":
        packages += ["litert-quantizer==0.11.0", "ai-edge-litert==2.3.0"]
    return packages


def _measure_data(row):
    """What measure.py checks the accuracy on, in words; "" when it cannot."""
    if quality.name(row) != quality.TOP1 or quality.value(row) is None:
        return ""
    dataset = str(row.get("dataset") or "")
    if dataset == "digits":
        return "the top-1 on scikit-learn's digits (the test split optlib used)"
    if dataset.endswith(".npz"):
        return f"the top-1 on the test split of `{dataset}` once you put that file beside it (not included)"
    return ""


def _no_accuracy(row):
    if quality.value(row) is None:
        return "the run has no accuracy to compare with"
    if quality.name(row) != quality.TOP1:
        return f"the run is measured by {quality.name(row)}, not top-1"
    return f"it reads scikit-learn's digits or an .npz; this run's data is {row.get('dataset')}"


def readme(row, tflite_name, model_name, model_note, script_name, script_note=""):
    """The bundle's README.md: what each file is and how to repeat the result."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(row["finished_at"])) if row.get("finished_at") else "?"
    model_line = (f"- `{model_name}`: the source Keras model the run started from."
                  if model_name else f"- No source model: {model_note}." + (
                      f" Put it beside `{script_name}` and set `MODEL_PATH` at the top of it." if script_name else ""))
    data = row.get("dataset")
    data_line = ("The script reads scikit-learn's digits itself." if data == "digits"
                 else f"The script needs the dataset `{data}` (not included): put it beside the script "
                      "and set `SAMPLES_NPZ` at the top.")
    return "\n".join([
        f"# {row.get('model')} · {row.get('dataset')} · {row.get('scheme')} (run #{row.get('id')})",
        "",
        f"Made by optlib on {row.get('host') or 'an unknown host'}, finished {when}.",
        "",
        "## Files",
        "",
        f"- `{tflite_name}`: the optimized LiteRT model, as measured.",
        model_line,
        (f"- `{script_name}`: plain Python code that makes the model again from the source model "
         "(no optlib needed). " + data_line) if script_name else "- No reproduction script: " + script_note + ".",
        f"- `{MEASURE_SCRIPT}`: times `{tflite_name}` with the LiteRT interpreter on this machine and checks its "
        "top-1 on the test data where the data is at hand (see below).",
        "- `data_recipe.json`: what was done to the data before it reached the model.",
        "- `recipe.json`: the converter settings and the fine-tuning steps.",
        "- `result.json`: the measured row: every figure, the settings, where and when.",
        "",
        "## Measured on that machine",
        "",
        *(_summary(row) or ["- no figures (the run did not finish)"]),
        "",
        "## Measure it again where it will run",
        "",
        "Latency depends on the machine: time it again where the model will run.",
        "",
        "```",
        "pip install numpy ai-edge-litert" + (" scikit-learn" if _measure_data(row) else ""),
        f"python {MEASURE_SCRIPT}",
        "```",
        "",
        f"It prints the median latency over repeated invokes after a warm-up, beside the figure above, and "
        f"{_measure_data(row) or 'no accuracy (' + _no_accuracy(row) + ')'}.",
        "",
        *([
            "## Repeat it",
            "",
            "```",
            "pip install " + " ".join(_packages(row)),
            f"python {script_name}",
            "```",
            "",
            f"It writes `reproduced-{tflite_name}` beside the measured file.",
            "A post-training scheme gives the same bytes again; a scheme that fine-tunes gives a file of",
            "the same kind whose weights differ with the random state.",
            "",
        ] if script_name else []),
    ])


def make(row, tflite, model=None, model_note=""):
    """Return the bytes of a zip bundling one result.

    Args:
        row: the run (a stored row or a flat result row).
        tflite: the ``.tflite`` bytes of the run.
        model: path of the source Keras model (a file or a SavedModel folder), or None.
        model_note: why there is no source model, when ``model`` is None.

    The reproduction script is :func:`optlib.views.codegen.code_for` with ``MODEL_PATH`` set to the
    bundled model; a run it cannot reproduce (one that did not finish) gets a README line saying why.
    """
    from optlib.views import codegen

    row = flat(row)
    model_name = f"{MODEL_FOLDER}/{Path(model).name}" if model is not None else ""
    stem = _safe(f"{Path(str(row.get('model'))).stem}-{row.get('scheme')}")
    tflite_name = f"{stem}.tflite"
    try:  # written beside the measured file, never over it
        code, code_note = codegen.code_for(row, model_path=model_name or None,
                                           output_path=f"reproduced-{tflite_name}"), ""
    except ValueError as problem:
        code, code_note = None, str(problem)
    script_name = "reproduce.py" if code is not None else None
    recipe = row.get("recipe") if isinstance(row.get("recipe"), dict) else {}
    measured = {k: v for k, v in row.items() if k not in ("tflite_path", "pid")}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        _put(archive, "README.md", readme(row, tflite_name, model_name, model_note or "not available",
                                          script_name, code_note or "not available"))
        _put(archive, tflite_name, tflite)
        if model is not None:
            _add_path(archive, model, model_name)
        if code is not None:
            _put(archive, script_name, code)
        _put(archive, MEASURE_SCRIPT, codegen.measure_for(row, tflite_name))
        _put(archive, "data_recipe.json", json.dumps(row.get("data_recipe") or {}, indent=2, default=str))
        _put(archive, "recipe.json", json.dumps(recipe, indent=2, default=str))
        _put(archive, "result.json", json.dumps(measured, indent=2, default=str))
    return buffer.getvalue()
