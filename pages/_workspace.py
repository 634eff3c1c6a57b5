"""A visitor's workspace: which stored results this browser may see and download.

On a shared server, one visitor's uploaded model (and its results) is not another's business. A browser
gets a workspace the first time it opens the app: a random token in the address (``?ws=...``), so a
reload or a bookmark finds it again. The workspace lists the fingerprints of the models uploaded in it
(``<data folder>/workspaces/<token>.json``). A visitor sees the results of the built-in models and of the
models uploaded in their workspace; the operator can show everything to everyone with
``OPTLIB_SHARED_GALLERY=1`` (a demo or a class that shares one store). The CLI is the operator's and
always sees the whole store.
"""

import json
import os
import re
import secrets
from pathlib import Path

import streamlit as st

from optlib import paths
from optlib.inputs.models import ZOO

TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def shared_gallery():
    """True when the operator shows every stored result to every visitor (``OPTLIB_SHARED_GALLERY=1``)."""
    return os.environ.get("OPTLIB_SHARED_GALLERY", "").strip().lower() in ("1", "true", "yes", "on")


def token():
    """This browser's workspace token, from the address or new (and then put in the address)."""
    if "app_workspace" not in st.session_state:
        given = st.query_params.get("ws", "")
        st.session_state["app_workspace"] = given if TOKEN.match(given) else secrets.token_urlsafe(16)
    if st.query_params.get("ws") != st.session_state["app_workspace"]:
        st.query_params["ws"] = st.session_state["app_workspace"]
    return st.session_state["app_workspace"]


def _file():
    folder = paths.data_dir() / "workspaces"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / f"{token()}.json"


def uploaded():
    """The fingerprints of the models uploaded in this workspace."""
    try:
        return set(json.loads(_file().read_text())["models"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return set()


def add_model(fingerprint):
    """Remember a model uploaded in this workspace: its results are this workspace's to see."""
    models = uploaded() | {str(fingerprint)}
    partial = _file().with_suffix(".partial")
    partial.write_text(json.dumps({"models": sorted(models)}))
    partial.replace(_file())


def visible(frame):
    """The rows of a results frame this visitor may see (all of them with a shared gallery)."""
    if shared_gallery() or frame.empty:
        return frame
    mine = uploaded()
    return frame[frame["model"].isin(list(ZOO)) | frame["model_fingerprint"].isin(list(mine))]


def may_see(row):
    """True when this visitor may see (and download) one stored run (a row of the store)."""
    return shared_gallery() or row.get("model") in ZOO or row.get("model_fingerprint") in uploaded()


def sweep_names(model_ref, data_ref, workspace):
    """(model, data, mine) of a sweep running on the server, as this visitor may read them.

    A built-in model or dataset is named to everyone; a file (an upload) only in the workspace that started the
    sweep, or to everyone with a shared gallery: elsewhere it is "another visitor's model" (or data).
    ``mine`` is True when the sweep was started in this browser's workspace.
    """
    mine = bool(workspace) and workspace == token()
    shown = mine or shared_gallery()
    model = str(model_ref)
    model = model if model in ZOO else Path(model).name if shown else "another visitor's model"
    data = str(data_ref)
    data = data if os.sep not in data else Path(data).name if shown else "another visitor's data"
    return model, data, mine


def may_follow(model_ref, data_ref, workspace):
    """True when this visitor may follow a running sweep (its ``?job=`` address selects its model and data)."""
    if (bool(workspace) and workspace == token()) or shared_gallery():
        return True
    return str(model_ref) in ZOO and os.sep not in str(data_ref)
