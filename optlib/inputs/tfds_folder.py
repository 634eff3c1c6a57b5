"""The tensorflow-datasets data folder: where it is, whether a dataset is prepared in it, whether the
operator allows downloads, and downloading and preparing one (the work of the download child).
"""

import contextlib
import io
import os
from pathlib import Path

from optlib.errors import InputError, first_line


def tfds_data_dir():
    """Return the tensorflow-datasets data folder optlib reads from."""
    return os.environ.get("TFDS_DATA_DIR") or str(Path.home() / "tensorflow_datasets")


def tfds_downloads_allowed():
    """Whether the operator lets optlib download and prepare tfds datasets people name
    (``OPTLIB_TFDS_DOWNLOADS=1``); off by default: a visitor's typed name costs no download and no disk."""
    return os.environ.get("OPTLIB_TFDS_DOWNLOADS", "").strip().lower() in ("1", "true", "yes", "on")


def tfds_prepared(name, data_dir=None):
    """Whether tfds dataset ``name`` (NAME, NAME/CONFIG or NAME:VERSION) is prepared in the data folder:
    a look at the folder for its ``dataset_info.json``, without importing tensorflow-datasets."""
    base = Path(data_dir or tfds_data_dir()) / name.split(":")[0]
    return base.is_dir() and next(base.rglob("dataset_info.json"), None) is not None


def tfds_not_prepared(name):
    """The message for a tfds dataset that is not prepared here while downloads are off."""
    return (f"tfds dataset '{name}' is not prepared on this server (in {tfds_data_dir()}). Choose a dataset "
            "that is, or ask the operator to prepare it there (set TFDS_DATA_DIR to use another folder), or to "
            "allow downloads with OPTLIB_TFDS_DOWNLOADS=1.")


def prepare_tfds(name):
    """Download and prepare tfds dataset ``name`` into :func:`tfds_data_dir` (the work of the download child,
    :func:`optlib.engine.datasets.prepare`, the only engine child with a network)."""
    from optlib._keras import tf

    tf()
    import tensorflow_datasets as tfds

    data_dir = tfds_data_dir()
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:
        raise InputError(f"tfds has no dataset '{name}' ({first_line(error, 120)}).") from None
    tfds.disable_progress_bar()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # tfds prints; stdout may carry --json
            builder.download_and_prepare()
    except Exception as error:
        raise InputError(f"tfds dataset '{name}' could not be downloaded and prepared in {data_dir} "
                         f"({first_line(error, 160)}); check the server's network, or prepare it there and "
                         "try again.") from None

