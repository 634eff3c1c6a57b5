"""A sweep running in the background for one browser session.

A sweep takes from seconds to many minutes. Run inside the page script, any
click (or a page switch) would stop it half-way; in a thread of its own it
goes on while the person looks at other pages, and the Optimize page polls
its progress. The thread only calls the engine (``optlib.engine.sweep.run``), never
Streamlit.
"""

import logging
import os
import secrets
import threading

from optlib.engine import admission, sweep
from optlib.errors import InputError

log = logging.getLogger(__name__)

# The server's jobs by token, so that a reload or a second tab of the same address (which carries the
# token as ?job=...) finds its running sweep again. A browser session ends with a reload; the job does not.
_JOBS, _JOBS_LOCK, _KEEP = {}, threading.Lock(), 64
FINISHED_STAGES = ("ok", "failed", "cached", "skipped", "timeout", "interrupted", "cancelled")


def find(token):
    """The job with this token (running or finished, while it is among the newest kept), or None."""
    with _JOBS_LOCK:
        return _JOBS.get(token)


def running_sweeps():
    """The sweeps running on this server now, from every browser session, oldest first."""
    with _JOBS_LOCK:
        jobs = list(_JOBS.values())
    return [job for job in jobs if isinstance(job, SweepJob) and job.running]


def other_processes():
    """The sweeps of other processes in the machine's line (the CLI, a notebook, another server), oldest first:
    what their tickets say (:func:`optlib.engine.admission.tickets`)."""
    return [ticket for ticket in admission.tickets() if ticket.get("pid") != os.getpid()]


class BackgroundJob:
    """Engine work in a daemon thread: its outcome, its error, and the progress events it sends.

    A subclass names its thread, says how an unexpected stop reads, and does
    its work in :meth:`work`, reporting through :meth:`_progress`.
    """

    name = "optlib-job"
    stopped = "The work stopped:"

    def __init__(self):
        self.result = None
        self.error = None
        self._events = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)

    def start(self):
        self.token = secrets.token_urlsafe(9)
        with _JOBS_LOCK:
            _JOBS[self.token] = self
            for token in list(_JOBS)[:-_KEEP]:  # the oldest, once finished, are forgotten
                if not _JOBS[token].running:
                    del _JOBS[token]
        self._thread.start()
        return self

    def work(self):
        raise NotImplementedError

    def _main(self):
        try:
            self.result = self.work()
        except InputError as problem:
            self.error = str(problem)
        except Exception as problem:  # reported on the page and in the server log, never lost
            log.exception("%s failed", self.name)
            self.error = f"{self.stopped} {type(problem).__name__}: {problem}"

    def _progress(self, event):
        with self._lock:
            self._events.append(event)

    def events(self):
        with self._lock:
            return list(self._events)

    @property
    def running(self):
        return self._thread.is_alive()

    def wait(self, timeout=None):
        """Block until the work ends (tests use this)."""
        self._thread.join(timeout)


class SweepJob(BackgroundJob):
    """One call of :func:`optlib.engine.sweep.run` in a daemon thread, with its progress events kept."""

    name = "optlib-sweep"
    stopped = "The sweep stopped:"

    def __init__(self, where="local", labels=None, workspace="", **arguments):
        """``workspace``: the token of the browser workspace that started it (pages/_workspace.py), so that
        other tabs can tell their own sweeps from other visitors'."""
        self.arguments, self.where, self.labels, self.workspace = arguments, where, labels, workspace
        self.selected = labels or [name for name in arguments["selection"].split(",") if name]
        self.cancel = threading.Event()
        super().__init__()

    def work(self):
        if self.where == "ray":  # optlib.engine.ray_executor: Ray tasks, on $RAY_ADDRESS or a Ray started here
            from optlib.engine.ray_executor import RayCluster

            arguments = {**self.arguments, "budget_s": None}
            with RayCluster(budget_s=self.arguments.get("budget_s")) as cluster:
                return sweep.run(**arguments, executor=cluster, progress=self._progress, cancel=self.cancel)
        return sweep.run(**self.arguments, progress=self._progress, cancel=self.cancel)

    def stop(self):
        """Ask the sweep to stop: finished schemes stay, the ones in flight are stopped within a second."""
        self.cancel.set()

    def ended(self):
        """(fraction, text) of the progress bar once the sweep ended: "Done" only when every scheme came to an
        end; after Stop (or an error) how many of how many finished, the bar filled that far."""
        total = len(self.selected)
        rows = (self.result or {}).get("results") or []
        finished = sum(row.get("status") in ("ok", "cached") for row in rows)
        if self.error:
            return 0.0, "Did not run: see the message below"
        if self.cancel.is_set() or any(row.get("status") in ("interrupted", "cancelled") for row in rows):
            return (finished / total if total else 0.0), f"Stopped — {finished} of {total} finished"
        return 1.0, "Done"

    def how_far(self):
        """(schemes finished, schemes selected, waiting in line) so far: "2 of 5 finished" in another tab."""
        events = self.events()
        _, _, states = self.state()
        finished = sum(stage in FINISHED_STAGES for stage, _, _ in states.values())
        waiting = bool(events) and events[-1].stage == "queued"
        return finished, len(self.selected), waiting

    def state(self):
        """Return (overall fraction, last message, {scheme: (stage, message, row)}) so far."""
        events = self.events()
        fraction, message, schemes = 0.0, "Starting…", {}
        for event in events:
            fraction = event.fraction
            name = event.scheme
            if name and self.labels:  # a grid: several jobs of one scheme, each its own line
                name = self.labels[event.index]
            label = f"{event.done} of {event.total} done · {name}" if name else "Preparing"
            message = f"{label}: {event.message or event.stage}"
            if event.stage == "queued":  # another sweep runs: this one waits its turn (Stop still works)
                message = f"Not started yet: {event.message}."
            if name:
                previous = schemes.get(name, (None, None, None))
                schemes[name] = (event.stage, event.message, event.row or previous[2])
        return fraction, message, schemes


class Table1Job(BackgroundJob):
    """A Table 1 reproduction (:func:`optlib.analysis.tables.reproduce_table1`) in a daemon thread.

    Like :class:`SweepJob`, it keeps the progress events for the page to poll;
    the reproduction is one sweep per architecture, so its state is kept per
    (architecture, scheme).
    """

    name = "optlib-table1"
    stopped = "The reproduction stopped:"

    def __init__(self, models, include_qat=False, **arguments):
        from optlib.analysis import tables

        self.models = list(models)
        self.schemes = list(tables.table1_schemes(include_qat))
        self.arguments = {"models": self.models, "include_qat": include_qat, **arguments}
        super().__init__()

    def work(self):
        from optlib.analysis import tables

        return tables.reproduce_table1(**self.arguments, progress=self._progress)

    def rows(self):
        """Every result row of the finished reproduction, all architectures together."""
        return [row for result in self.result or [] for row in result["results"]]

    def state(self):
        """Return (overall fraction, last message, {(model, scheme): (stage, message, row)}) so far."""
        events = self.events()
        fraction, message, states = 0.0, "Starting…", {}
        for outer in events:
            model, event = outer.model, outer.sweep
            name = event.scheme
            fraction = (outer.model_index + event.fraction) / outer.models
            step = f"{outer.model_index + 1}/{outer.models} {model}"
            label = f"{step} · {event.index + 1}/{event.total} {name}" if name else f"{step} · preparing"
            message = f"{label}: {event.message or event.stage}"
            if name:
                previous = states.get((model, name), (None, None, None))
                states[(model, name)] = (event.stage, event.message, event.row or previous[2])
            elif event.stage == "loading":
                for scheme in self.schemes:
                    if states.get((model, scheme), ("loading",))[0] == "loading":
                        states[(model, scheme)] = ("loading", event.message, None)
        return fraction, message, states


# --- Layer insight & search ----------------------------------------------------------

class _PageJob(BackgroundJob):
    """Engine work of one page about one model and dataset."""

    def __init__(self, model_ref, data_ref):
        self.model_ref, self.data_ref = str(model_ref), str(data_ref)
        super().__init__()

    def matches(self, model_ref, data_ref):
        """True if this job is about the given model and data."""
        return (self.model_ref, self.data_ref) == (str(model_ref), str(data_ref))


def _artifacts(runs):
    """The .tflite files of the runs a page work reads (its sandbox lets it read those)."""
    return tuple(row["tflite_path"] for row in runs.values() if row and row.get("tflite_path"))


class LayerJob(_PageJob):
    """:func:`optlib.analysis.insight.layer_report` in a daemon thread, for the Layer insight & search page."""

    name = "optlib-layers"
    stopped = "The layer comparison stopped:"

    def __init__(self, model_ref, data_ref, store=None, trusted=False):
        super().__init__(model_ref, data_ref)
        self.store, self.trusted = store, trusted

    def work(self):
        from optlib.analysis import insight
        from optlib.engine import admission, isolated

        progress = lambda fraction, message: self._progress((fraction, message))  # noqa: E731
        # What is missing is made first, by a sweep from here (in the sweeps' line, with its own workers), so
        # the child below does not hold one of the few page-work turns while it waits for that line.
        runs = insight.layer_runs(self.model_ref, self.data_ref, self.store, self.trusted, progress)
        # In a process of its own under the worker memory budget: the server never holds TensorFlow for it.
        return isolated.call(insight.layer_report, self.model_ref, self.data_ref, self.store, self.trusted,
                             progress=progress, what="The layer comparison", runs=runs,
                             touches=isolated.Touches(self.model_ref, self.data_ref, _artifacts(runs)),
                             waiting=lambda place, limit: progress(0.7, admission.describe(place, limit, "page-work")))

    def state(self):
        """Return (fraction, last message) so far."""
        events = self.events()
        return events[-1] if events else (0.0, "Starting…")


class SearchJob(_PageJob):
    """An accuracy-targeted search (:func:`optlib.analysis.search.search`) in a daemon thread."""

    name = "optlib-search"
    stopped = "The search stopped:"

    def __init__(self, model_ref, data_ref, max_loss, objective, trials, budget_s=None, store=None, trusted=False):
        super().__init__(model_ref, data_ref)
        self.arguments = {"max_loss": max_loss, "objective": objective, "trials": int(trials),
                          "budget_s": budget_s or None, "store": store, "trusted": trusted}

    def work(self):
        from optlib.analysis import search

        return search.search(self.model_ref, self.data_ref, **self.arguments, progress=self._progress)

    def state(self):
        """Return (fraction, last message, [(scheme, stage, row)] of the runs finished so far).

        The baseline (float32) comes first, then one run per candidate tried.
        """
        total = self.arguments["trials"] + 1
        fraction, message, finished = 0.0, "Starting…", []
        for event in self.events():
            name = event.scheme
            if not name:
                message = f"Preparing: {event.message or event.stage}"
                continue
            step = f"{min(len(finished) + 1, total)}/{total} · {name}"
            if event.stage in FINISHED_STAGES:
                finished.append((name, event.stage, event.row))
                fraction = len(finished) / total
                message = f"{step}: {event.message or event.stage}"
            else:
                fraction = (len(finished) + event.fraction) / total
                message = f"{step}: {event.message or event.stage}"
        return min(fraction, 1.0), message, finished
