"""optlib.analysis.timing: how long schemes took on this machine before, from stored runs; never an assumed figure."""

import pytest

from optlib.analysis import timing


def stored(scheme, total_s, model="digits_cnn", status="ok", **metrics):
    """A row as Store.rows() returns it (metrics in their own dict)."""
    return {"id": 1, "model": model, "dataset": "digits", "scheme": scheme, "status": status,
            "metrics": {"total_s": total_s, "build_s": total_s and total_s * 0.8, **metrics}}


ROWS = [
    stored("float32", 1.0), stored("float32", 3.0), stored("float32", 2.0),  # median 2
    stored("int8", 4.0), stored("int8", 6.0),  # median 5
    stored("int8", 400.0, status="failed"),  # a failed run says nothing about how long a finished one takes
    stored("qat", 12.0), stored("qat", 14.0),
    stored("qat", 90.0, model="mobilenet_v2"),  # another model
    stored("prune", None),  # stored before times were recorded
]


def test_typical_seconds_is_the_median_of_earlier_finished_runs_per_scheme():
    assert timing.typical_seconds(ROWS, model="digits_cnn") == {"float32": 2.0, "int8": 5.0, "qat": 13.0}
    assert timing.typical_seconds(ROWS, model="mobilenet_v2") == {"qat": 90.0}
    assert timing.typical_seconds(ROWS)["qat"] == 14.0  # every model: median of 12, 14, 90
    assert timing.typical_seconds([], model="digits_cnn") == {}


def test_flat_result_rows_count_too_but_not_rows_served_from_the_store():
    flat = [{"model": "m", "scheme": "int8", "status": "ok", "total_s": 8.0},
            {"model": "m", "scheme": "int8", "status": "ok", "total_s": 8.0, "cached": True},  # the same run again
            {"model": "m", "scheme": "int8", "status": "ok", "total_s": 2.0}]
    assert timing.typical_seconds(flat) == {"int8": 5.0}


@pytest.mark.parametrize("seconds, text", [(0.42, "0.4 s"), (4.25, "4.2 s"), (12.4, "12 s"), (89, "89 s"),
                                           (150, "2 min"), (3000, "50 min"), (4200, "1 h 10 min")])
def test_duration_reads_like_a_person_says_it(seconds, text):
    assert timing.duration(seconds) == text


def test_estimate_says_what_earlier_runs_took():
    typical = timing.typical_seconds(ROWS, model="digits_cnn")
    assert timing.estimate(typical, ["qat"]) == "about 13 s on this machine, from earlier runs"
    assert timing.estimate(typical, ["float32", "int8"], "digits_cnn") == (
        "about 7.0 s in all on this machine, from earlier runs of digits_cnn")
    assert timing.estimate(typical, ["int8", "prune", "cluster"]) == (
        "about 5.0 s for int8 on this machine, from earlier runs; no earlier runs of prune, cluster to estimate "
        "from")


def test_estimate_says_plainly_when_there_is_nothing_to_go_by():
    assert timing.estimate({}, ["qat", "prune"]) == "no earlier runs on this machine to estimate from"
    assert timing.estimate(timing.typical_seconds(ROWS, model="mobilenet_v2"), ["int8"]) == timing.NOTHING_TO_GO_BY


def test_where_the_time_went_counts_each_workers_loading_once():
    from optlib.analysis.timing import phases_text, where_the_time_went

    rows = [{"pid": 1, "phases_s": {"worker_start": 1.0, "load_model": 5.0, "build": 2.0, "latency": 0.5}},
            {"pid": 1, "phases_s": {"worker_start": 1.0, "load_model": 5.0, "build": 3.0, "latency": 0.5}},
            {"pid": 2, "phases_s": {"load_model": 6.0, "store": 0.1, "build": 1.0}}, {"pid": 3, "phases_s": {}}]
    went = where_the_time_went(rows)
    assert went == {"worker_start": 1.0, "load_model": 11.0, "build": 6.0, "latency": 1.0, "store": 0.1}
    assert list(went) == ["worker_start", "load_model", "build", "latency", "store"]  # in the order they happen
    assert phases_text(rows[2]["phases_s"]) == "loading the model 6.00 s · storing 0.10 s · building 1.00 s"
