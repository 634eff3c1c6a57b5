"""The children's messages (optlib/engine/messages.py): only the kinds a listener expects, with fields of
their types, get through; anything else is refused as a child that was subverted."""

import socket
from multiprocessing.connection import Connection

import pytest

from optlib.engine import job, messages, processes, wire


FIELDS = {messages.Reported: {"event": job.Event}, messages.Done: {"result": job.Result}}


def _pair():
    ours, theirs = socket.socketpair()
    return Connection(ours.detach()), Connection(theirs.detach())


def test_an_expected_message_comes_through_whole():
    parent, child = _pair()
    result = job.Result(job.Spec(0, "int8", {}, "k"), "ok", None, {"size_bytes": 10}, b"TFL3")
    wire.send(child, messages.Done(result))
    assert messages.receive(parent, messages.Done, messages.Ready, fields=FIELDS) == messages.Done(result)


@pytest.mark.parametrize("sent", [
    messages.Answer("a page work's answer, on a worker's pipe"),
    messages.Fatal(b"bytes where text belongs"),
    messages.Reported("not an event"),
    ("ready",),  # the old tuple form
])
def test_a_message_of_another_kind_or_with_fields_of_other_types_is_refused(sent):
    parent, child = _pair()
    wire.send(child, sent)
    with pytest.raises(wire.WireError):
        messages.receive(parent, messages.Ready, messages.Fatal, messages.Reported, messages.Done, fields=FIELDS)


def test_a_worker_result_of_no_job_counts_as_the_worker_dying():
    from optlib.engine.executors import _messages

    class Process:
        def poll(self):
            return None

    class Worker:
        def __init__(self):
            self.conn, self.other_end = _pair()
            self.process, self.paused_at = Process(), None

        def refuse(self):  # what a processes.Child says when it stops one for such a message
            return processes.Died(-9, garbled=True)

    worker = Worker()
    wire.send(worker.other_end, messages.Done(job.Result(b"not a spec", "ok")))
    got = list(_messages([worker], timeout=0.5))
    assert len(got) == 1 and type(got[0][1]).__name__ == "Died"
