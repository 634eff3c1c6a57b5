"""Admission: at most K sweeps run their jobs at the same time on this machine; the others wait in line.

Every sweep that has jobs to run (from any browser session, the CLI or a
notebook) takes a ticket in one queue shared by every process on the machine
that uses the same data folder: a file under ``$OPTLIB_HOME/queue/`` named by
the time it was taken. The first K live tickets run; the others wait, see
their place in line, and start in turn. K is
:func:`optlib.inputs.limits.max_sweeps` (``OPTLIB_MAX_SWEEPS``; 1 on two
cores, 0 for no limit), so a latency is timed on a machine that no other
sweep keeps busy.

Tickets are named and placed one at a time (a ``flock`` on ``.taking`` in the
queue's folder): otherwise a ticket named first but placed second would let
both sweeps see no one ahead and run at once.

A ticket is live while its owner holds an exclusive ``flock`` on it: the
kernel drops the lock when the owning process ends, however it ends, so a
sweep killed while running or waiting never blocks the line (the next
process to look removes its ticket).

    with admission.turn(waiting=lambda place, limit: ..., cancel=event):
        ...  # run the jobs
"""

import contextlib
import fcntl
import json
import os
import secrets
import time

from optlib import paths

POLL_S = 0.5


def queue_dir(queue="queue"):
    """The folder of a machine-wide queue: ``queue`` for sweeps, ``page-work`` for isolated page work."""
    folder = paths.data_dir() / queue
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Ticket:
    """One sweep's place in the queue, held (flock) for as long as this object is open."""

    def __init__(self, label="", queue="queue"):
        folder = queue_dir(queue)
        with open(folder / ".taking", "a") as taking:  # one ticket at a time is named and placed, so a
            fcntl.flock(taking, fcntl.LOCK_EX)       # ticket named earlier is always in the queue earlier
            last = max((int(path.name.split("-")[0]) for path in folder.glob("*.ticket")), default=0)
            stamp = max(time.time_ns(), last + 1)  # after every ticket in line, even if the clock stepped back
            name = f"{stamp:020d}-{os.getpid()}-{secrets.token_hex(4)}"
            temporary = folder / f".{name}.tmp"
            self.handle = open(temporary, "w")  # noqa: SIM115 (held open, and locked, as long as the ticket)
            fcntl.flock(self.handle, fcntl.LOCK_EX)  # locked before it has a ticket's name: never taken for stale
            json.dump({"pid": os.getpid(), "label": label, "since": time.time()}, self.handle)
            self.handle.flush()
            self.path = folder / f"{name}.ticket"
            os.rename(temporary, self.path)

    def ahead(self):
        """How many live tickets were taken before this one (stale ones are removed on the way)."""
        count = 0
        for path in sorted(self.path.parent.glob("*.ticket")):
            if path.name >= self.path.name:
                break
            if _live(path):
                count += 1
        return count

    def close(self):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.handle.close()


def _live(path):
    """True if some process holds the ticket; a ticket nobody holds is removed."""
    try:
        with open(path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # its sweep ended without closing it (killed)
            return False
    except FileNotFoundError:
        return False


def waiting_sweeps():
    """The number of live tickets in the queue (running and waiting sweeps)."""
    return sum(1 for path in queue_dir().glob("*.ticket") if _live(path))


def tickets(queue="queue"):
    """The live tickets of a line, oldest first, as written by their owners: ``{"pid", "label", "since"}`` plus
    ``"running"``, True for the first K (the ones that hold their turn), False for those waiting in line."""
    from optlib.inputs import limits

    limit = limits.max_sweeps() if queue == "queue" else limits.max_page_work()
    found = []
    for path in sorted(queue_dir(queue).glob("*.ticket")):
        if not _live(path):
            continue
        try:
            ticket = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):  # ended just now
            continue
        found.append({**ticket, "running": not limit or len(found) < limit})
    return found


@contextlib.contextmanager
def turn(waiting=None, cancel=None, label="", queue="queue", limit=None):
    """Wait for this sweep's turn, then hold it for the ``with`` block.

    Args:
        waiting: called with (place in line, 1 = next; the number of sweeps that run at once) when
            the sweep starts to wait and whenever its place changes.
        cancel: a ``threading.Event``; once set, a waiting sweep leaves the line and
            :class:`~optlib.engine.executors.Cancelled` is raised.
        queue, limit: another line with its own limit (default: the sweeps', ``limits.max_sweeps()``).

    Yields:
        True if the sweep had to wait (so others may have made some of its results meanwhile).
    """
    from optlib.engine.executors import Cancelled
    from optlib.inputs import limits

    limit = limits.max_sweeps() if limit is None else limit
    if not limit:
        yield False
        return
    ticket = Ticket(label, queue)
    waited, told = False, None
    try:
        while True:
            ahead = ticket.ahead()
            if ahead < limit:
                break
            waited, place = True, ahead - limit + 1
            if waiting is not None and place != told:  # said again only when the place changes
                waiting(place, limit)
                told = place
            if cancel is None:
                time.sleep(POLL_S)
            elif cancel.wait(POLL_S):
                raise Cancelled()
        yield waited
    finally:
        ticket.close()


LINES = {  # what runs in each line, one and several, and why it waits
    "queue": ("1 sweep runs", "{} sweeps run", " so that latencies are timed on a quiet machine (OPTLIB_MAX_SWEEPS)"),
    "page-work": ("1 page computation runs", "{} page computations run",
                  ", each in a process of its own (OPTLIB_MAX_PAGE_WORK)"),
}


def describe(place, limit, queue="queue"):
    """What a sweep (or page work, ``queue="page-work"``) waiting in line says: its place and why it waits."""
    one, several, why = LINES[queue]
    running = one if limit == 1 else several.format(limit)
    ahead = "it is next" if place == 1 else f"{place - 1} waiting before it"
    return f"waiting in line, number {place} ({ahead}): {running} at a time on this machine{why}"

