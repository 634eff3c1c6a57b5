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


def _add_path(archive, path, name):
    path = Path(path)
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            archive.write(file, f"{name}/{file.relative_to(path).as_posix()}")
    else:
        archive.write(path, name)


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
    known = schemes.SCHEMES.get(row.get("scheme"))
    if known is not None and getattr(known, "backend", "") == "litert-quantizer":
        packages += ["litert-quantizer==0.11.0", "ai-edge-litert==2.3.0"]
    return packages


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
        "- `data_recipe.json`: what was done to the data before it reached the model.",
        "- `recipe.json`: the converter settings and the fine-tuning steps.",
        "- `result.json`: the measured row: every figure, the settings, where and when.",
        "",
        "## Measured on that machine",
        "",
        *(_summary(row) or ["- no figures (the run did not finish)"]),
        "",
        "Latency depends on the machine: time it again where the model will run.",
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
        archive.writestr("README.md", readme(row, tflite_name, model_name, model_note or "not available",
                                             script_name, code_note or "not available"))
        archive.writestr(tflite_name, tflite)
        if model is not None:
            _add_path(archive, model, model_name)
        if code is not None:
            archive.writestr(script_name, code)
        archive.writestr("data_recipe.json", json.dumps(row.get("data_recipe") or {}, indent=2, default=str))
        archive.writestr("recipe.json", json.dumps(recipe, indent=2, default=str))
        archive.writestr("result.json", json.dumps(measured, indent=2, default=str))
    return buffer.getvalue()
