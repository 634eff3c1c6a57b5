"""The sidebar every page shows: the current selection, the sandbox, work running here and on this server,
and the store."""

import streamlit as st

from pages._results import store_path, stored_runs
from pages._selection import BACKGROUND_JOBS, busy, data_label, model_label, selection_problem, trusted


@st.cache_resource(show_spinner=False)
def sandbox_status():
    """Whether this server can sandbox model work (:mod:`optlib.engine.sandbox`); said once in the server's
    log when the app starts, and in the sidebar when there is none."""
    import logging

    from optlib.engine import sandbox

    found = sandbox.status()
    if found.available:
        logging.getLogger("optlib").warning("optlib: model work runs in a Landlock sandbox (ABI %s): %s.",
                                            found.abi, "; ".join(found.covers))
    else:
        logging.getLogger("optlib").warning("optlib: NO SANDBOX (%s). Model files from users are refused unless "
                                            "OPTLIB_ALLOW_UNSANDBOXED=1.", found.reason)
    return found


def sidebar():
    """The sidebar every page shows: current model, dataset and store."""
    from pages import _workspace

    _workspace.token()  # in the address from the first page on, so a reload keeps this browser's workspace
    with st.sidebar:
        st.markdown("#### Current selection")
        st.markdown(f":material/neurology: **Model**  \n`{model_label()}`")
        st.markdown(f":material/dataset: **Dataset**  \n`{data_label()}`")
        if selection_problem():
            st.caption(":material/block: not usable; see Model & data")
        if trusted():
            st.caption(":material/warning: trusted loading is on (code in model files may run)")
        found = sandbox_status()
        if not found.available:
            st.caption(f":material/warning: no sandbox on this server ({found.reason}): model files from users "
                       "are refused unless the operator set OPTLIB_ALLOW_UNSANDBOXED=1")
        running = busy()
        if running:
            page, title = BACKGROUND_JOBS[running]
            st.caption(f":material/progress_activity: Work is running in the background; its progress is on "
                       f"{title}.")
            st.page_link(page, label=title, icon=":material/progress_activity:")
        server_sweeps_ui()
        runs = stored_runs()
        st.markdown(f":material/database: **Store**  \n`{store_path()}`")
        st.caption(f"{len(runs)} stored run{'s' if len(runs) != 1 else ''}"
                   + ("" if _workspace.shared_gallery() else " (the built-in models' and your uploads')"))


def server_sweeps_ui():
    """The sweeps running on this server (every tab's) and on this machine: whose, how far, a link to follow one.
    Redrawn every few seconds while any runs."""
    from pages import _jobs

    polling = bool(_jobs.running_sweeps() or _jobs.other_processes())
    st.fragment(_server_sweeps, run_every=SERVER_POLL_S if polling else None)(polling)


SERVER_POLL_S = 2.0


def _server_sweeps(polling):
    from pages import _jobs, _workspace

    sweeps, others = _jobs.running_sweeps(), _jobs.other_processes()
    if not sweeps and not others:
        if polling:  # the last one just ended: draw the page once more, without the polling
            st.rerun()
        return
    st.markdown("#### On this server")
    here = st.session_state.get("optimize_job")
    for job in sweeps:
        arguments = job.arguments
        model, data_, mine = _workspace.sweep_names(arguments["model_ref"], arguments["data_ref"], job.workspace)
        finished, total, waiting = job.how_far()
        whose = ("your sweep (this tab)" if job is here else "your sweep") if mine else "another visitor's sweep"
        line = f":material/progress_activity: **{model}** on **{data_}**: {finished} of {total} finished"
        line += f"{' · waiting in line' if waiting else ''} · {whose}"
        if job is not here and _workspace.may_follow(arguments["model_ref"], arguments["data_ref"], job.workspace):
            line += f" · [follow it](optimize?job={job.token}&ws={_workspace.token()})"
        st.caption(line)
    for ticket in others:
        label = str(ticket.get("label") or "")
        named = _workspace.shared_gallery() or label.split(" / ")[0] in _workspace.ZOO
        state = "running" if ticket.get("running") else "waiting in line"
        st.caption(f":material/terminal: A sweep of another process (the command line, a notebook or another "
                   f"server){f': **{label}**' if named and label else ''} · {state}")
