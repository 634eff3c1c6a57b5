"""The float32 conversion of a model, made once and shared by every worker and sweep on this machine.

The LiteRT Quantizer schemes and the float32 baseline all start from the same
plain conversion. Workers of a sweep are separate processes, so the bytes are
kept in the data folder (``cache/float32/MODEL/``, one folder per model
fingerprint), keyed by TensorFlow's version too; a file lock makes a second worker wait for the first
one's conversion instead of repeating it. The folder keeps at most
``OPTLIB_FLOAT32_CACHE_MB`` (:func:`optlib.inputs.limits.float32_cache`):
after each new conversion the least recently used ones go (a reuse
refreshes a file's time). A model's folder also keeps what else the sweep's workers would each make
alike, so that one makes it and the others wait for it: LiteRT Quantizer's calibrations
(``calibration-KEY.npz``, :func:`optlib.engine.lq_backend.calibrate`, a few kilobytes) and the float
model's outputs on a test split (``outputs-KEY.npz``, :func:`shared_arrays`); they go with the model's
last conversion.
"""

import hashlib
import json
import os
import time
import zipfile

from optlib import paths
from optlib.inputs import limits

SANDBOXED = "OPTLIB_SANDBOX"  # set in every sandboxed child (optlib.engine.sandbox.ENV; not imported: it imports us)


def float32_bytes(fingerprint, make, meanwhile=None):
    """Return (bytes, {"convert_s", "reused"}): the cached conversion, or ``make()``'s, timed and kept.

    Args:
        fingerprint: the model's content fingerprint (equal fingerprints: the same model).
        make: converts the model to float32 TFLite bytes.
        meanwhile: called (once) before waiting when another process is converting this model right now:
            work this process needs anyway, done while it would otherwise wait.
    """
    from filelock import FileLock, Timeout

    limit = limits.float32_cache()  # a bad setting fails here, before the conversion
    key = hashlib.sha256(f"{fingerprint}|tensorflow {_tf_version()}".encode()).hexdigest()[:24]
    folder = folder_for(fingerprint)
    model, facts = folder / f"{key}.tflite", folder / f"{key}.json"
    lock = FileLock(str(folder / f"{key}.lock"))
    try:
        lock.acquire(timeout=0 if meanwhile else None)  # None: the lock's own timeout, which is to wait
    except Timeout:  # another worker converts: do the other work first, then wait for its conversion
        meanwhile()
        lock.acquire()
    try:
        try:
            os.utime(model)  # recently used: the last to go when the folder is over its limit
            return model.read_bytes(), {"convert_s": json.loads(facts.read_text())["convert_s"], "reused": True}
        except FileNotFoundError:  # not made yet, or pruned
            pass
        started = time.perf_counter()
        made = make()
        convert_s = round(time.perf_counter() - started, 2)
        for path, content in ((model, made), (facts, json.dumps({"convert_s": convert_s}).encode())):
            partial = path.with_suffix(".partial")
            partial.write_bytes(content)
            os.replace(partial, path)
        if not os.environ.get(SANDBOXED):  # a sandboxed worker can remove only its own: its sweep prunes
            prune(root(), limit, keep=model)
    finally:
        lock.release()
    return made, {"convert_s": convert_s, "reused": False}


SHARED = ("calibration-*.npz", "outputs-*.npz")  # what a model's folder keeps beside its conversions


def digest_arrays(digest, arrays):
    """Feed each array's type, shape and bytes to ``digest`` (a ``hashlib`` object): part of a shared
    file's key (the inputs a calibration or a model's outputs were made from)."""
    import numpy as np

    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest


def shared_arrays(folder, kind, key, make):
    """Return (arrays, reused): ``make()``'s list of arrays, made once and kept in ``folder`` (a model's folder,
    :func:`folder_for`) as ``KIND-KEY.npz`` for the sweep's other workers and later sweeps.

    A file lock makes a second process wait for the first one's arrays instead of making them too; the file
    is written to a temporary name and renamed, so a reader finds all of it or nothing. ``np.load`` gives
    the arrays back bit for bit; arrays of Python objects are not kept (``make()``'s are returned as they are).
    """
    import numpy as np
    from filelock import FileLock

    path = folder / f"{kind}-{key}.npz"
    with FileLock(str(path.with_suffix(".lock"))):
        try:
            with np.load(path, allow_pickle=False) as kept:
                arrays = [kept[f"arr_{number}"] for number in range(len(kept.files))]
            os.utime(path)  # recently used
            return arrays, True
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # not made yet, pruned, or unreadable
            pass
        arrays = make()
        if all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays):
            partial = path.with_suffix(".partial")
            with open(partial, "wb") as out:
                np.savez(out, *arrays)
            os.replace(partial, path)
    return arrays, False


def root():
    """The cache's folder: one sub-folder per model."""
    return paths.data_dir() / "cache" / "float32"


def folder_for(fingerprint):
    """The folder of one model's conversions (made if missing). A sandboxed worker may write this folder
    and no other one of the cache: a hostile file can spoil only its own conversion."""
    folder = root() / hashlib.sha256(str(fingerprint).encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _tf_version():
    from optlib._keras import tf

    return tf().__version__


def prune_all():
    """Keep the cache within ``OPTLIB_FLOAT32_CACHE_MB`` (the sweep's driver calls it after its workers)."""
    if root().is_dir():
        prune(root(), limits.float32_cache())


def prune(folder, limit_bytes, keep=None):
    """Remove the least recently used conversions once the folder's .tflite files pass ``limit_bytes``.

    ``keep`` (the conversion just made) always stays, and so does any conversion another process holds
    the lock of (being made or read); lock files stay, so that lock keeps working.
    """
    from filelock import FileLock, Timeout

    found = []
    for path in folder.glob("*/*.tflite"):
        try:
            info = path.stat()
        except FileNotFoundError:  # another process pruned it
            continue
        found.append((info.st_mtime, info.st_size, path))
    kept = 0
    for _, size, path in sorted(found, key=lambda item: item[0], reverse=True):
        kept += size
        if path == keep or kept <= limit_bytes:
            continue
        try:
            with FileLock(str(path.with_suffix(".lock")), timeout=0):
                path.unlink(missing_ok=True)
                path.with_suffix(".json").unlink(missing_ok=True)
                kept -= size
        except Timeout:  # in use right now: it stays this time
            continue
    for model in folder.iterdir():  # what a model's folder shares goes with its last conversion
        if model.is_dir() and not any(model.glob("*.tflite")):
            for path in (p for pattern in SHARED for p in model.glob(pattern)):
                try:
                    with FileLock(str(path.with_suffix(".lock")), timeout=0):
                        path.unlink(missing_ok=True)
                except Timeout:  # being made or read right now
                    continue
