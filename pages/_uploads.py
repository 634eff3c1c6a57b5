"""The Model & data page's helpers: uploads into a private folder, and the cached model and data facts.

Only the Model & data page uses these; what every page shares is in ``_state.py``, ``_selection.py``,
``_results.py`` and ``_shared.py``.
"""

import glob
import hashlib
import os
import re
import shutil
import tempfile
import weakref
from pathlib import Path

import streamlit as st

from optlib.engine import processes
from optlib.errors import InputError
from optlib.inputs import archive
from pages import _shared

MODEL_UPLOAD_TYPES = ("keras", "h5", "zip", "tflite")
DATA_UPLOAD_TYPES = {"npz": ("npz",), "zip": ("zip",)}


# --- Uploads -------------------------------------------------------------------

def upload_limit_mb():
    """The upload size limit in force (server.maxUploadSize), in MB."""
    return int(st.get_option("server.maxUploadSize"))


UPLOADS = "optlib-upload-"  # optlib-upload-<server's pid>-<random>


class UploadFolder:
    """A session's upload folder, removed when the session ends: Streamlit drops a closed tab's session (and
    with it this object) after ``server.disconnectedSessionTTL``; also when the server stops, and after a
    crash at the next start (:func:`optlib.engine.processes.remove_orphans`)."""

    def __init__(self):
        processes.remove_orphans(UPLOADS)
        self.path = tempfile.mkdtemp(prefix=f"{UPLOADS}{os.getpid()}-")
        self._remove = weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)  # runs at exit too


def find_upload(name, fingerprint):
    """An uploaded model this server still keeps, in any session's upload folder, whose content is the one a
    stored run used (its ``fingerprint``); None when every copy is gone (an upload lasts as long as its session).
    The Export bundle includes it though the visitor has chosen another model since."""
    from optlib.inputs import models

    found = Path(tempfile.gettempdir()).glob(f"{UPLOADS}{os.getpid()}-*/*/{glob.escape(Path(str(name)).name)}")
    for path in sorted(found):
        try:
            if models.resolve(str(path)).fingerprint == fingerprint:
                return str(path)
        except InputError:
            continue
    return None


def _upload_dir():
    """This session's private folder for uploads (mode 0700), made on first use."""
    folder = st.session_state.get("app_upload_folder")
    if folder is None or not Path(folder.path).is_dir():
        folder = st.session_state["app_upload_folder"] = UploadFolder()
        st.session_state["app_upload_dir"] = folder.path
    return Path(folder.path)


def safe_name(name, allowed_suffixes, fallback):
    """Return a file name made only of safe characters, keeping an allowed suffix.

    The uploaded name is never used as a path: only its stem's letters,
    digits, ``-`` and ``_`` survive, and the suffix must be one of
    ``allowed_suffixes`` (without the dot).

    Raises:
        InputError: the suffix is not allowed.
    """
    base = re.split(r"[\\/]", str(name))[-1]
    stem, dot, suffix = base.rpartition(".")
    suffix = suffix.lower() if dot else ""
    if suffix not in allowed_suffixes:
        raise InputError(f"'{base}' is not a {' / '.join('.' + s for s in allowed_suffixes)} file; "
                         "choose a file of that type.")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:60] or fallback
    return f"{stem}.{suffix}"


def save_upload(uploaded, allowed_suffixes, fallback):
    """Write an uploaded file to this session's private folder; return its path.

    The file goes to ``<private folder>/<content hash>/<safe name>``, so the
    same upload always lands on the same path (and the store can serve its
    results), and two different files never overwrite each other. Zip
    archives are checked member by member (path traversal, links, sizes)
    before anything else looks at them.

    Raises:
        InputError: wrong type, or a zip archive that is refused.
    """
    name = safe_name(uploaded.name, allowed_suffixes, fallback)
    content = uploaded.getvalue()
    digest = hashlib.sha256(content).hexdigest()[:16]
    target = _upload_dir() / digest / name
    if not target.is_file():
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        with os.fdopen(handle, "wb") as sink:
            sink.write(content)
        os.replace(tmp, target)
    if target.suffix == ".zip":
        try:
            archive.check(target)
        except InputError:
            target.unlink(missing_ok=True)
            raise
    return target


# --- Cached loaders --------------------------------------------------------------

def model_summary(ref, fingerprint, trusted_flag):
    """Plain facts about a model for display (:func:`optlib.inputs.facts.model_facts`).

    Loaded in a process of its own under the worker memory budget, never in the server: a model whose
    configuration declares huge layers is stopped there. ``fingerprint`` is part of the cache key, so that
    a changed file loads anew; a refusal is remembered too, so a rerun does not start another process.

    Raises:
        InputError: the model cannot be loaded.
    """
    return _shared.answer(_facts_outcome("model_facts", (ref, trusted_flag), fingerprint, "Loading the model"))


def summaries(model_ref_, model_fp, trusted_flag, data_ref_, data_fp, examples=10, task=""):
    """Both at once, with one start of TensorFlow (:func:`optlib.inputs.facts.model_and_data_facts`):
    {"model": facts, "data": facts} or {"model": facts, "data_problem": message}.

    Raises:
        InputError: the model cannot be loaded.
    """
    return _shared.answer(_facts_outcome("model_and_data_facts", (model_ref_, trusted_flag, data_ref_, examples, task),
                                         (model_fp, data_fp), "Loading the model and the dataset"))


@st.cache_data(show_spinner=False, max_entries=32)
def _facts_outcome(name, args, fingerprints, what):
    """("ok", facts) or ("error", message) of ``optlib.inputs.facts.<name>``, kept per arguments and fingerprints."""
    from optlib.engine import isolated
    from optlib.inputs import facts

    touches = isolated.Touches(model=args[0], data=args[2] if len(args) > 2 else "")

    def read():
        from optlib.inputs import data_refs, tfds_folder

        if touches.data and tfds_folder.tfds_downloads_allowed():  # a tfds dataset is downloaded first, if it must be
            from optlib.engine import datasets

            datasets.prepare(data_refs.resolve(touches.data))
        return isolated.call(getattr(facts, name), *args, what=what, touches=touches)

    return _shared.outcome(read)
