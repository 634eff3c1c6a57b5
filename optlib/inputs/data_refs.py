"""Data references: the built-in ``digits`` and ``diabetes``, an ``.npz``, a folder of class sub-folders
(or a ``.zip`` of one), and ``tfds:NAME[:SPLIT]``.

:func:`resolve` checks a data reference and fingerprints it without loading TensorFlow; reading it is
:mod:`optlib.inputs.readers`' work, checking and preparing it for a model :mod:`optlib.inputs.preparation`'s.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from optlib.errors import InputError

DIGITS_FINGERPRINT = "digits-sklearn-split80-seed0"
DIABETES_FINGERPRINT = "diabetes-sklearn-split80-seed0"


@dataclass(frozen=True)
class DataSource:
    """A resolved data reference: ``kind`` is digits, npz, folder, zip or tfds."""

    ref: str
    kind: str
    path: Path = None
    fingerprint: str = ""
    tfds_name: str = ""
    tfds_split: str = ""

    @property
    def name(self):
        return self.ref if self.kind in ("digits", "diabetes", "tfds") else Path(self.ref).name


def _hash(path):
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def resolve(ref):
    """Resolve a data reference without loading TensorFlow.

    Raises:
        InputError: unknown name, missing path, or unsupported file type.
    """
    ref = str(ref).strip()
    if ref == "digits":
        return DataSource(ref, "digits", fingerprint=DIGITS_FINGERPRINT)
    if ref == "diabetes":
        return DataSource(ref, "diabetes", fingerprint=DIABETES_FINGERPRINT)
    if ref.startswith("tfds:"):
        parts = ref.split(":")
        if len(parts) not in (2, 3) or not parts[1]:
            raise InputError(f"'{ref}' is not a tfds reference; write tfds:NAME or tfds:NAME:SPLIT.")
        split = parts[2] if len(parts) == 3 else ""
        return DataSource(ref, "tfds", fingerprint=ref, tfds_name=parts[1], tfds_split=split)
    path = Path(ref).expanduser()
    if not path.exists():
        raise InputError(f"Dataset '{ref}' not found: use 'digits', 'diabetes', a .npz file, a folder of "
                         "class sub-folders, a .zip of one, or tfds:NAME[:SPLIT].")
    if path.is_dir():
        return DataSource(str(path), "folder", path, _hash(path))
    kind = {".npz": "npz", ".zip": "zip"}.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"'{path.name}' is not a dataset file: use .npz, a folder of class "
                         "sub-folders or a .zip of one.")
    return DataSource(str(path), kind, path, _hash(path))
