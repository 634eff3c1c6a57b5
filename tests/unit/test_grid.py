"""Grids of settings: several values of a setting make one job per combination, each with its own key."""

import json

import pytest
from rows import result

from optlib import cli
from optlib.engine import grid, sweep
from optlib.errors import InputError
from optlib.views import settings_charts


def test_a_grid_makes_one_job_per_combination_with_distinct_keys():
    _, specs = sweep.plan("digits_cnn", "digits", "float32,prune,cluster,prune_cluster_qat",
                          {"prune.sparsity": "0.3,0.5,0.7,0.9", "cluster.clusters": "8,16,32",
                           "prune_cluster_qat.clusters": [8, 16], "epochs": "1"})
    by_scheme = {}
    for spec in specs:
        by_scheme.setdefault(spec.scheme, []).append(spec.settings)
    assert [s["sparsity"] for s in by_scheme["prune"]] == [0.3, 0.5, 0.7, 0.9]
    assert [s["clusters"] for s in by_scheme["cluster"]] == [8, 16, 32]
    assert len(by_scheme["float32"]) == 1 and len(by_scheme["prune_cluster_qat"]) == 2
    assert all(s["epochs"] == 1 for s in by_scheme["prune"])
    assert len({spec.key for spec in specs}) == len(specs) == 10
    assert [spec.index for spec in specs] == list(range(10))


def test_an_unscoped_grid_multiplies_every_scheme_that_has_the_setting():
    _, specs = sweep.plan("digits_cnn", "digits", "float32,prune,prune_qat",
                          {"sparsity": "0.5,0.8", "epochs": "1,2"})
    counts = {name: sum(1 for s in specs if s.scheme == name) for name in ("float32", "prune", "prune_qat")}
    assert counts == {"float32": 1, "prune": 4, "prune_qat": 4}


def test_free_text_keeps_its_commas():
    _, specs = sweep.plan("digits_cnn", "digits", "int8_selective", {"keep_float": "conv_a,conv_b"})
    assert len(specs) == 1 and specs[0].settings["keep_float"] == "conv_a,conv_b"


@pytest.mark.parametrize("overrides, message", [
    ({"prune.sparsity": "0.3,1.5"}, "must be from 0 to 0.99; got 1.5"),
    ({"cluster.clusters": "8,x"}, "needs a int, got 'x'"),
    ({"prune.sparsity": ","}, "empty list"),
    ({"prune.nothing": "1,2"}, "has no setting 'nothing'"),
])
def test_every_value_of_a_grid_is_checked_before_anything_runs(overrides, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        sweep.plan("digits_cnn", "digits", "prune,cluster", overrides)


def test_the_cli_refuses_a_bad_value_in_a_grid_with_exit_2(capsys):
    assert cli.main(["sweep", "--model", "digits_cnn", "--data", "digits", "--schemes", "prune",
                     "--param", "prune.sparsity=0.3,2"]) == 2
    assert "Setting 'sparsity' must be from 0 to 0.99; got 2.0." in capsys.readouterr().err


def test_the_cli_sweeps_a_grid_and_each_row_records_its_settings(tmp_path, capsys):
    """Served from the store: the rows of a grid are stored and found again by their own keys."""
    from optlib.engine.job import Result
    from optlib.engine.store import Store

    store = tmp_path / "r.sqlite"
    inputs, specs = sweep.plan("digits_cnn", "digits", "prune", {"prune.sparsity": "0.3,0.9"})
    target = Store(store)
    for spec in specs:  # stand-ins for finished runs, stored the way the driver stores them
        run_id = target.start(inputs, spec, "h", 1)
        target.finish(run_id, Result(spec, "ok", None, {"size_bytes": 10, "gzip_bytes": 5}, b"TFL3"))
    assert cli.main(["sweep", "--model", "digits_cnn", "--data", "digits", "--schemes", "prune", "--store",
                     str(store), "--param", "prune.sparsity=0.3,0.9", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [(r["cached"], r["settings"]["sparsity"]) for r in rows] == [(True, 0.3), (True, 0.9)]


def test_labels_name_the_settings_that_tell_a_schemes_jobs_apart():
    _, specs = sweep.plan("digits_cnn", "digits", "float32,prune", {"prune.sparsity": "0.3,0.9"})
    varying = grid.varying(specs)
    assert [grid.label(s.scheme, varying[s.index]) for s in specs] == [
        "float32", "prune (sparsity=0.3)", "prune (sparsity=0.9)"]


def test_the_settings_chart_draws_a_line_per_scheme_over_the_setting():
    from optlib.analysis import report

    rows = [result("prune", i, gzip=1000 - 200 * i, accuracy=0.97 - 0.05 * i,
                   settings={"sparsity": value, "threads": 1}) for i, value in enumerate((0.3, 0.5, 0.7, 0.9), 1)]
    rows += [result("cluster", 10 + i, gzip=500 + 100 * i, settings={"clusters": value, "threads": 1})
             for i, value in enumerate((8, 16, 32))]
    rows.append(result("float32", 20, settings={"threads": 1}))
    df = report.frame(rows)
    assert settings_charts.varying(df) == ["clusters", "sparsity"]
    fig = settings_charts.against(df, "sparsity", "gzip_mb")
    assert [trace.name for trace in fig.data] == ["prune"]
    assert list(fig.data[0].x) == [0.3, 0.5, 0.7, 0.9]
    assert list(fig.data[0].y) == pytest.approx([r["gzip_bytes"] / 1e6 for r in rows[:4]])
    accuracy = settings_charts.against(df, "sparsity", "accuracy")
    assert list(accuracy.data[0].y) == pytest.approx([97 - 5 * i for i in range(1, 5)])
    assert list(settings_charts.against(df, "clusters", "size_mb").data[0].x) == [8, 16, 32]
    assert not settings_charts.against(df, "threads", "size_mb").data  # one value: no line, a note instead
