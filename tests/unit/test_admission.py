"""Admission: at most K sweeps run at once on the machine; the others wait in a queue shared by every process."""

import subprocess
import sys
import threading
import time

import pytest

from optlib.engine import admission
from optlib.engine.executors import Cancelled
from optlib.engine.store import Store
from pages._jobs import SweepJob


@pytest.fixture
def one_at_a_time(monkeypatch, tmp_path):
    monkeypatch.setenv("OPTLIB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPTLIB_MAX_SWEEPS", "1")
    monkeypatch.setattr(admission, "POLL_S", 0.05)


def _hold_turn(release, holding, **kwargs):
    """Take a turn in a thread and keep it until ``release`` is set."""
    def hold():
        with admission.turn(**kwargs):
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert holding.wait(10)
    return thread


def test_a_second_sweep_waits_for_the_first_and_starts_when_it_ends(one_at_a_time):
    release, holding = threading.Event(), threading.Event()
    first = _hold_turn(release, holding)
    places, order = [], []
    second = threading.Thread(target=lambda: order.append(_take_turn(places)), daemon=True)
    second.start()
    assert _soon(lambda: places)
    time.sleep(0.3)  # a few more polls: it is told its place once, not at every poll
    assert places == [(1, 1)] and order == []  # told its place once, still waiting
    assert admission.waiting_sweeps() == 2
    release.set()
    first.join(5)
    second.join(5)
    assert order == [True]  # it started, and knows it had waited
    assert admission.waiting_sweeps() == 0


def _soon(condition, timeout=30):
    """True once ``condition()`` holds, polled until ``timeout`` seconds (a loaded machine schedules late)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _take_turn(places):
    with admission.turn(waiting=lambda place, limit: places.append((place, limit))) as waited:
        return waited


def test_with_two_slots_two_run_and_the_others_wait_in_order(one_at_a_time, monkeypatch):
    monkeypatch.setenv("OPTLIB_MAX_SWEEPS", "2")
    releases = [threading.Event(), threading.Event()]
    holders = [_hold_turn(release, threading.Event()) for release in releases]
    places = {"third": [], "fourth": []}
    started = []

    def wait(name):
        with admission.turn(waiting=lambda place, limit: places[name].append(place)):
            started.append(name)

    third = threading.Thread(target=wait, args=("third",), daemon=True)
    third.start()
    assert _soon(lambda: places["third"])  # in line before the fourth comes
    fourth = threading.Thread(target=wait, args=("fourth",), daemon=True)
    fourth.start()
    assert _soon(lambda: places["fourth"])
    time.sleep(0.3)  # a few more polls change nothing
    assert started == [] and places == {"third": [1], "fourth": [2]}
    releases[0].set()
    third.join(5)
    fourth.join(5)
    assert started == ["third", "fourth"] and places["third"] == [1] and places["fourth"][0] == 2
    releases[1].set()
    for holder in holders:
        holder.join(5)


def test_a_waiting_sweep_can_be_stopped_and_leaves_the_line(one_at_a_time):
    release, holding = threading.Event(), threading.Event()
    first = _hold_turn(release, holding)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(Cancelled), admission.turn(cancel=cancel):
        pass
    assert admission.waiting_sweeps() == 1
    release.set()
    first.join(5)


def test_a_killed_process_never_blocks_the_line(one_at_a_time):
    code = ("from optlib.engine import admission; import os, signal\n"
            "ticket = admission.Ticket('doomed'); print('held', flush=True); os.kill(os.getpid(), signal.SIGKILL)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == -9 and "held" in done.stdout
    assert len(list(admission.queue_dir().glob("*.ticket"))) == 1  # left behind by the killed process
    places = []
    assert _take_turn(places) is False and places == []  # not counted: nobody holds it
    assert list(admission.queue_dir().glob("*.ticket")) == []  # and removed on the way


def test_a_page_sweep_waits_in_line_says_its_place_and_stop_works_while_it_waits(one_at_a_time, tmp_path):
    release, holding = threading.Event(), threading.Event()
    first = _hold_turn(release, holding)  # another session's sweep (or the CLI's) is running
    job = SweepJob(model_ref="digits_cnn", data_ref="digits", selection="float32,int8", overrides={},
                   store=tmp_path / "s.sqlite", recompute=False, trusted=False, budget_s=None).start()
    _soon(lambda: "waiting in line" in job.state()[1], timeout=120)  # planning the sweep comes first
    assert job.state()[1].startswith("Not started yet: waiting in line, number 1 (it is next): 1 sweep runs at a "
                                     "time on this machine")
    assert job.running
    job.stop()
    job.wait(10)
    assert not job.running and job.error is None
    assert [row["status"] for row in job.result["results"]] == ["cancelled", "cancelled"]
    assert Store(tmp_path / "s.sqlite").rows() == []  # nothing ran, nothing stored
    release.set()
    first.join(5)


def test_no_limit_means_no_queue(one_at_a_time, monkeypatch):
    monkeypatch.setenv("OPTLIB_MAX_SWEEPS", "0")
    release, holding = threading.Event(), threading.Event()
    first = _hold_turn(release, holding)
    assert _take_turn([]) is False
    release.set()
    first.join(5)


def test_a_ticket_named_first_but_placed_late_is_still_ahead(one_at_a_time, monkeypatch):
    """Two sweeps take tickets at the same moment: the one named first must not lose its place to the other
    while it is still writing its ticket (both ran at once on CI, each seeing no one ahead)."""
    rename, slow = admission.os.rename, threading.Event()

    def late_rename(source, target):
        if threading.current_thread().name == "named first":
            slow.set()
            time.sleep(0.5)  # named, not yet in the queue
        rename(source, target)

    monkeypatch.setattr(admission.os, "rename", late_rename)
    tickets = {}
    first = threading.Thread(target=lambda: tickets.update(first=admission.Ticket()), name="named first")
    first.start()
    assert slow.wait(10)
    second = admission.Ticket()
    ahead_of_second = second.ahead()  # what turn() asks at once, to decide whether it may run
    first.join(10)
    try:
        assert ahead_of_second == 1
        assert tickets["first"].ahead() == 0
    finally:
        tickets["first"].close()
        second.close()


def test_a_clock_stepped_back_does_not_put_a_new_ticket_ahead(one_at_a_time, monkeypatch):
    first = admission.Ticket()
    monkeypatch.setattr(admission.time, "time_ns", lambda: 1)  # the clock set back (NTP, a VM resumed)
    second = admission.Ticket()
    try:
        assert (first.ahead(), second.ahead()) == (0, 1)
    finally:
        first.close()
        second.close()


def test_a_sweep_finds_what_another_made_before_its_turn_even_without_waiting(one_at_a_time, monkeypatch, tmp_path):
    """Sweep B misses a result in the store while sweep A is making it; A ends and B takes its turn at once
    (nobody ahead, so it did not wait): B must look in the store again, not make the result a second time."""
    import contextlib

    from optlib.engine import sweep
    from optlib.engine.job import Result

    store = Store(tmp_path / "runs.sqlite")
    inputs, specs = sweep.plan("digits_cnn", "digits", "float16")

    @contextlib.contextmanager
    def turn_after_a_finished(*args, **kwargs):
        for spec in specs:  # sweep A stores its result in the gap, then releases the line
            store.finish(store.start(inputs, spec, "host", 1), Result(spec, "ok", metrics={}, artifact=b"TFL3"))
        yield False

    class Recording:
        given = []

        def map(self, inputs, todo, on_event, cancel=None):
            self.given.extend(todo)
            return iter(())

    monkeypatch.setattr(sweep.admission, "turn", turn_after_a_finished)
    rows = sweep.run("digits_cnn", "digits", "float16", store=store, executor=Recording())["results"]
    assert Recording.given == []
    assert [row["status"] for row in rows] == ["ok"] and len(store.rows()) == 1
