"""Where optlib keeps its files: the store, artifacts and cached zoo models.

Everything lives under one data folder: ``$OPTLIB_HOME`` if set, otherwise
``data/`` in the repository root.
"""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir():
    """Return the data folder, created if missing."""
    path = Path(os.environ.get("OPTLIB_HOME") or REPO_ROOT / "data")
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_store_path():
    """Return the default SQLite store path."""
    return data_dir() / "results.sqlite"


def keras_home():
    """Keras's own folder (its config, and the application weights it finds): ``$KERAS_HOME`` if set,
    otherwise ``keras/`` in the data folder, never ``~/.keras`` — optlib reads nothing outside its folders."""
    return Path(os.environ.get("KERAS_HOME") or data_dir() / "keras")


def zoo_dir():
    """Return the folder where trained zoo models are cached."""
    path = data_dir() / "zoo"
    path.mkdir(parents=True, exist_ok=True)
    return path
