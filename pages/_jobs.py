"""A sweep running in the background for one browser session.

A sweep takes from seconds to many minutes. Run inside the page script, any
click (or a page switch) would stop it half-way; in a thread of its own it
goes on while the person looks at other pages, and the Optimize page polls
its progress. The thread only calls the engine (``optlib.sweep.run``), never
Streamlit.
"""

import logging
import threading

from optlib import sweep
from optlib.errors import InputError

log = logging.getLogger(__name__)


class SweepJob:
    """One call of :func:`optlib.sweep.run` in a daemon thread, with its progress events kept."""

    def __init__(self, **arguments):
        self.arguments = arguments
        self.selected = [name for name in arguments["selection"].split(",") if name]
        self.result = None
        self.error = None
        self._events = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="optlib-sweep", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        try:
            self.result = sweep.run(**self.arguments, progress=self._progress)
        except InputError as problem:
            self.error = str(problem)
        except Exception as problem:  # reported on the page and in the server log, never lost
            log.exception("sweep failed")
            self.error = f"The sweep stopped: {type(problem).__name__}: {problem}"

    def _progress(self, event):
        with self._lock:
            self._events.append(event)

    @property
    def running(self):
        return self._thread.is_alive()

    def wait(self, timeout=None):
        """Block until the sweep ends (tests use this)."""
        self._thread.join(timeout)

    def state(self):
        """Return (overall fraction, last message, {scheme: (stage, message, row)}) so far."""
        with self._lock:
            events = list(self._events)
        fraction, message, schemes = 0.0, "Starting…", {}
        for event in events:
            fraction = event["fraction"]
            name = event["scheme"]
            label = f"{event['index'] + 1}/{event['total']} · {name}" if name else "Preparing"
            message = f"{label}: {event['message'] or event['stage']}"
            if name:
                previous = schemes.get(name, (None, None, None))
                schemes[name] = (event["stage"], event["message"], event.get("row") or previous[2])
        return fraction, message, schemes
