"""The float32 conversion of a model, made once and shared by every worker and sweep on this machine.

The LiteRT Quantizer schemes and the float32 baseline all start from the same
plain conversion. Workers of a sweep are separate processes, so the bytes are
kept in the data folder (``cache/float32/``), keyed by the model's fingerprint
and TensorFlow's version; a file lock makes a second worker wait for the first
one's conversion instead of repeating it.
"""

import hashlib
import json
import os
import time

from optlib import paths


def float32_bytes(fingerprint, make):
    """Return (bytes, {"convert_s", "reused"}): the cached conversion, or ``make()``'s, timed and kept.

    Args:
        fingerprint: the model's content fingerprint (equal fingerprints: the same model).
        make: converts the model to float32 TFLite bytes.
    """
    from filelock import FileLock

    from optlib._keras import tf

    key = hashlib.sha256(f"{fingerprint}|tensorflow {tf().__version__}".encode()).hexdigest()[:24]
    folder = paths.data_dir() / "cache" / "float32"
    folder.mkdir(parents=True, exist_ok=True)
    model, facts = folder / f"{key}.tflite", folder / f"{key}.json"
    with FileLock(str(folder / f"{key}.lock")):
        if model.is_file() and facts.is_file():
            return model.read_bytes(), {"convert_s": json.loads(facts.read_text())["convert_s"], "reused": True}
        started = time.perf_counter()
        made = make()
        convert_s = round(time.perf_counter() - started, 2)
        for path, content in ((model, made), (facts, json.dumps({"convert_s": convert_s}).encode())):
            partial = path.with_suffix(".partial")
            partial.write_bytes(content)
            os.replace(partial, path)
    return made, {"convert_s": convert_s, "reused": False}
