"""Grids in the app: a list field per setting on Optimize, a line per job, Ray as a choice, and Compare's
figure against a setting."""

import base64
import json

import apphelpers
import numpy as np
from apphelpers import texts

from optlib.engine import sweep
from optlib.engine.job import Result
from optlib.engine.store import Store, result_row
from optlib.engine.sweep import Progress


class GridSweep:
    """Stands in for ``sweep.run``: plans the real jobs (grid included) and stores a canned row for each."""

    def __init__(self):
        self.calls = []

    def __call__(self, model_ref, data_ref, selection="all", overrides=None, store=None, progress=None,
                 executor=None, **rest):
        self.calls.append({"overrides": dict(overrides or {}), "executor": type(executor).__name__})
        inputs, specs = sweep.plan(model_ref, data_ref, selection, overrides)
        store, rows = Store(store), []
        for spec in specs:
            progress(Progress(spec.scheme, spec.index, len(specs), "running", spec.index / len(specs), spec.index))
            run_id = store.start(inputs, spec, "testhost", 1)
            metrics = {**apphelpers.canned_metrics(spec.scheme), "gzip_bytes": 200_000 - spec.index * 20_000}
            rows.append(result_row(store.get(store.finish(run_id, Result(spec, "ok", None, metrics, b"TFL3")))))
            progress(Progress(spec.scheme, spec.index, len(specs), "ok", (spec.index + 1) / len(specs),
                              spec.index + 1, "done", rows[-1]))
        return {"model": inputs.model.name, "model_note": "", "dataset": inputs.data.name, "store": str(store.path),
                "results": rows}


def grid_of_prune_and_cluster(at):
    at.button(key="optimize_none_button").click().run()
    at.checkbox(key="optimize_scheme_prune").check().run()
    at.checkbox(key="optimize_scheme_cluster").check().run()
    at.text_input(key="optimize_grid_sparsity").input("0.3, 0.5, 0.7, 0.9").run()
    return at.text_input(key="optimize_grid_clusters").input("8,16,32").run()


def test_a_grid_of_settings_runs_one_job_per_value_each_on_its_own_line(app, home, monkeypatch):
    fake = GridSweep()
    monkeypatch.setattr(sweep, "run", fake)
    at = grid_of_prune_and_cluster(app("optimize.py"))
    assert not at.exception
    assert at.button(key="optimize_run_button").label == "Run 2 schemes (7 runs)"
    at.button(key="optimize_run_button").click().run()
    at.session_state["optimize_job"].wait(60)
    at.run()
    assert not at.exception
    assert fake.calls == [{"overrides": {"sparsity": [0.3, 0.5, 0.7, 0.9], "clusters": [8, 16, 32]},
                           "executor": "NoneType"}]
    lines = texts(at.markdown)
    for label in ("prune (sparsity=0.3)", "prune (sparsity=0.9)", "cluster (clusters=8)", "cluster (clusters=32)"):
        assert f"**{label}** — " in lines, label
    assert "2 of 2 schemes finished" not in texts(at.success)  # seven runs, each its own row
    assert len(at.dataframe[-1].value) == 7


def test_a_value_out_of_range_in_a_grid_field_is_shown_and_blocks_run(app, home):
    at = app("optimize.py")
    at.text_input(key="optimize_grid_runs").input("10, 0").run()
    assert not at.exception
    assert "Setting 'runs' must be from 1 to 10000; got 0." in texts(at.error)
    assert at.button(key="optimize_run_button").disabled


def test_the_sweep_can_run_on_ray(app, home, monkeypatch):
    fake = GridSweep()
    monkeypatch.setattr(sweep, "run", fake)
    at = app("optimize.py")
    at.selectbox(key="optimize_where").set_value("ray").run()
    at.button(key="optimize_run_button").click().run()
    at.session_state["optimize_job"].wait(60)
    assert fake.calls[-1]["executor"] == "RayCluster"


def test_compare_plots_size_and_accuracy_against_a_grid_setting(app, home, monkeypatch):
    monkeypatch.setattr(sweep, "run", GridSweep())
    at = grid_of_prune_and_cluster(app("optimize.py"))
    at.button(key="optimize_run_button").click().run()
    at.session_state["optimize_job"].wait(60)
    at = app("compare.py")
    assert not at.exception
    assert "Against a setting" in texts(at.subheader)
    setting = at.selectbox(key="compare_setting")
    assert setting.options == ["clusters", "sparsity"] and setting.value == "sparsity"
    figures = {f["layout"]["title"]["text"]: f for f in map(figure, at.get("plotly_chart"))}
    assert xs(figures["Gzipped size against sparsity"]) == [0.3, 0.5, 0.7, 0.9]
    assert [trace["name"] for trace in figures["Top-1 accuracy against sparsity"]["data"]] == ["prune"]
    setting.set_value("clusters").run()
    assert not at.exception
    figures = {f["layout"]["title"]["text"]: f for f in map(figure, at.get("plotly_chart"))}
    assert xs(figures["Gzipped size against clusters"]) == [8, 16, 32]


def figure(chart):
    return json.loads(chart.proto.spec)


def xs(fig):
    """The x values of a figure's first line (Plotly sends number arrays base64-encoded)."""
    x = fig["data"][0]["x"]
    return list(np.frombuffer(base64.b64decode(x["bdata"]), x["dtype"])) if isinstance(x, dict) else x
