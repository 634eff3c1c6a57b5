"""Engine work a page asks for, run in a process of its own under the worker memory budget.

The Model & data page's model and data facts, the Layer insight page's layer
comparison and LiteRT Quantizer's per-tensor validation, and saving a zoo
model into a bundle load TensorFlow, the model and the data, and can take
gigabytes. Run in the app's server they would sit outside any memory budget
and their memory would stay with the server for good. :func:`call` runs the
function in a fresh child (``python -m optlib.engine.isolated``) watched as a
sweep's worker is: stopped once its resident memory passes
``OPTLIB_WORKER_MEMORY_MB`` (:func:`optlib.inputs.limits.worker_memory`). At
most ``OPTLIB_MAX_PAGE_WORK`` such children run at once on the machine (a
line of their own, like the sweeps', :mod:`optlib.engine.admission`); the
child ends with the call and dies with its parent.

    facts = isolated.call(facts.model_facts, "digits_cnn", False, what="Loading the model")

Sweeps the function starts run in their own workers, under their own budget and in the sweeps' line.
"""

import builtins
import os
import sys
import traceback
from dataclasses import dataclass

from optlib.engine import messages, wire
from optlib.errors import InputError, first_line

OUT_OF_TIME = ("{what} was stopped after {seconds} s, the deadline for a page's work. Use a smaller model or "
               "dataset, or raise OPTLIB_PAGE_WORK_DEADLINE_S (seconds).")
OUT_OF_MEMORY = ("{what} ran out of memory: it used {used} of the {limit} limit per worker process, so it was "
                 "stopped. Use a smaller model or dataset, or raise OPTLIB_WORKER_MEMORY_MB (megabytes) if this "
                 "machine has the memory.")


@dataclass(frozen=True)
class Touches:
    """What one page work reads and writes: the child's sandbox lets it reach these and nothing else of the
    data folder (:func:`optlib.engine.sandbox.reach`).

    Attributes:
        model, data: model and data references ("" for none).
        files: other files it reads (the artifacts of stored runs).
        write: folders it writes (where a bundle's source model is saved).
        network: it uses the network (downloading a tfds dataset the operator allows; no model work).
    """

    model: str = ""
    data: str = ""
    files: tuple = ()
    write: tuple = ()
    network: bool = False

    def reach(self):
        from optlib.engine import sandbox
        from optlib.inputs import data_refs, models

        model = models.resolve(self.model) if self.model else None
        if model is not None and model.kind != "zoo":
            sandbox.require_for_untrusted()
        found = data_refs.resolve(self.data) if self.data else None
        return sandbox.reach(model, found, read=self.files, write=self.write)


def call(work, *args, progress=None, what=None, memory=None, waiting=None, touches=Touches(), deadline_s=None,
         **kwargs):
    """Return ``work(*args, **kwargs)`` computed in a child process.

    ``work`` and its arguments go to the child by pickling (a module-level
    function, plain data). With ``progress``, ``work`` is also given a
    ``progress`` argument whose calls come back here, in order.

    Args:
        what: what the work is, for messages ("The layer comparison"); default: the function's name.
        memory: the child's memory budget in bytes (default: the worker budget).
        waiting: called with (place in line, the number that run at once) when the work waits for a turn
            and whenever its place changes (``admission.describe(place, limit, "page-work")`` says it in words).
        touches: the model, data and files the work reads, and the folders it writes (:class:`Touches`); the
            child's sandbox allows those and nothing else of the data folder.
        deadline_s: the child is stopped after this many seconds of work (its wait for a turn not counted);
            default ``OPTLIB_PAGE_WORK_DEADLINE_S`` (:func:`optlib.inputs.limits.page_work_deadline`).

    Raises:
        InputError: ``work`` raised one (the same message), or the child ran out of memory, out of time, or died.
        The built-in exception ``work`` raised (ValueError, RuntimeError, ...) with its message; one
        that is not built in, or not made from a message alone, as RuntimeError("TypeName: message").
        The child prints the traceback on its stderr (the server's log).
    """
    from optlib.engine import admission, processes
    from optlib.inputs import limits

    what = what or f"{work.__name__}()"
    limit = memory or limits.worker_memory()
    deadline_s = deadline_s or limits.page_work_deadline()
    read, write = touches.reach()
    with admission.turn(waiting, queue="page-work", limit=limits.max_page_work(), label=what):
        child = processes.Child(__name__, os.getpid(), pythonpath=sys.path, read=read, write=write,
                                packages=_package_of(work), memory=limit, network=touches.network)
        try:
            child.deadline(deadline_s)
            child.send((work, args, kwargs, progress is not None))
            while True:
                message = child.receive(messages.Answer, messages.Failure, messages.Progress)
                if isinstance(message, messages.Answer):
                    return message.value
                if isinstance(message, messages.Failure):
                    raise _error(message.kind, message.text)
                progress(*message.args)
        except processes.Ended as ended:
            raise InputError(_stopped(what, ended.why)) from None
        finally:
            child.end(0)


def _stopped(what, why):
    """What to tell the person when the work's child was stopped or died (``why``, from :class:`processes.Ended`)."""
    from optlib.engine import processes
    from optlib.units import format_bytes

    if isinstance(why, processes.OutOfMemory):
        return OUT_OF_MEMORY.format(what=what, used=format_bytes(why.used), limit=format_bytes(why.limit))
    if isinstance(why, processes.OutOfTime):
        return OUT_OF_TIME.format(what=what, seconds=f"{why.seconds:g}")
    return f"{what} stopped: its process {why.how()}."


def _package_of(work):
    """The folder of the package ``work`` comes from when it is a package beside optlib in the repository
    (which the child cannot list): the child imports it, through a link, to unpickle the work."""
    top = sys.modules.get(work.__module__.split(".")[0])
    if top is None or top.__name__ in ("optlib", "__main__") or not getattr(top, "__path__", None):
        return ()
    return (os.path.realpath(list(top.__path__)[0]),)


def _error(kind, message):
    """The exception to raise here for one the work raised in the child."""
    if kind == "InputError":
        return InputError(message)
    found = getattr(builtins, kind, None)
    if isinstance(found, type) and issubclass(found, Exception):
        try:
            return found(message)
        except TypeError:  # one that takes more than a message (UnicodeDecodeError)
            pass
    return RuntimeError(f"{kind}: {message}")


def _serve(conn, parent):
    """The child: run the one request, send back its progress and ("ok", value) or ("error", (type, message)).

    A failure is also printed with its traceback on stderr (the server's log).
    """
    from optlib.engine.processes import die_with_parent

    if not die_with_parent(parent):  # the parent died before that was in place
        return
    try:
        try:
            work, args, kwargs, wants_progress = conn.recv()
        except (EOFError, OSError):
            return
        if wants_progress:
            kwargs["progress"] = lambda *event: wire.send(conn, messages.Progress(event))
        wire.send(conn, messages.Answer(work(*args, **kwargs)))
    except InputError as problem:
        wire.send(conn, messages.Failure("InputError", str(problem)))
    except Exception as problem:  # noqa: BLE001 — raised again in the asking process; an answer that is not data too
        traceback.print_exc()
        wire.send(conn, messages.Failure(type(problem).__name__, first_line(problem)))


if __name__ == "__main__":
    from multiprocessing.connection import Connection

    _serve(Connection(int(sys.argv[1])), int(sys.argv[2]))
