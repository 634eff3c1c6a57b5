"""One job, one Result: the shared context, and a Result that carries everything the driver persists."""

import numpy as np
import pytest

from optlib.engine import job
from optlib.engine.executors import InProcess
from optlib.engine.store import Store


class _Scores:
    """Stands in for a Keras model: predicts fixed class scores."""

    def __init__(self, label):
        self.label = label

    def predict(self, x, batch_size=64, verbose=0):
        scores = np.zeros((len(x), 10), np.float32)
        scores[:, self.label] = 1.0
        return scores

    def predict_on_batch(self, x):
        return self.predict(x)


def _context(monkeypatch, y_test):
    """A job context over a stand-in model and dataset (nothing loaded for real)."""
    from types import SimpleNamespace

    from optlib.inputs import models, preparation, tasks

    labels = np.asarray(y_test)
    monkeypatch.setattr(models, "load", lambda source, trusted=False: _Scores(0))
    monkeypatch.setattr(preparation, "load", lambda source, model, scale, task="": SimpleNamespace(
        x_test=np.zeros((len(y_test), 4)), xs_test=[np.zeros((len(y_test), 4))], test_count=len(y_test),
        y_test=labels, outputs=[tasks.Port("scores", (10,), activation="softmax")],
        tasks={"scores": "classification"}, primary="scores", labels=lambda: {"scores": labels}))
    source = SimpleNamespace(name="stand-in", kind="file", ref="stand-in", fingerprint="fp")
    return job.Context(job.Inputs(source, SimpleNamespace(name="stand-in data", fingerprint="fp")))


def test_keras_accuracy_is_not_served_to_a_new_model_that_reuses_a_freed_ones_id(monkeypatch):
    context = _context(monkeypatch, [0, 0, 0, 1])
    seen = []
    for label in (0, 1) * 5:  # a fine-tuned model per scheme, freed before the next one is made
        model = _Scores(label)
        seen.append((id(model), label, context.keras_accuracy(model)))
        del model
    assert len({identity for identity, _, _ in seen}) < len(seen)  # CPython reused an id ...
    assert all(accuracy == (0.75 if label == 0 else 0.25) for _, label, accuracy in seen)  # ... but not a figure


def test_a_job_writes_nothing_and_its_result_carries_the_artifact(tmp_path, tiny_model_path, digits_npz):
    from optlib.engine import sweep

    store = Store(tmp_path / "r.sqlite")
    inputs, specs = sweep.plan(str(tiny_model_path), str(digits_npz), "float32,int8",
                               {"runs": "3", "warmup": "1", "rep_samples": "16"})
    events = []
    with InProcess() as executor:
        results = list(executor.map(inputs, specs, events.append))
    assert store.rows() == [] and not any(store.artifacts.iterdir())  # nothing written by the jobs
    for result, spec in zip(results, specs):
        assert result.spec == spec and result.status == "ok" and result.error is None
        assert result.artifact[4:8] == b"TFL3" and result.metrics["size_bytes"] == len(result.artifact)
        assert result.host and result.pid and result.started_at <= result.finished_at
    assert [e.stage for e in events if e.scheme == "int8"][0] == "starting"
    run_id = store.start(inputs, specs[1], results[1].host, results[1].pid)
    row = store.get(store.finish(run_id, results[1]))
    assert row["status"] == "ok" and open(row["tflite_path"], "rb").read() == results[1].artifact


class _Executor:
    """Stands in for an executor: starts every job, then yields the given results (or raises)."""

    def __init__(self, results, stop=None):
        self.results, self.stop = results, stop

    def map(self, inputs, specs, events, cancel=None):
        for spec in specs:
            events(job.Event(spec.index, spec.scheme, "starting", 0.0, "starting", 4242, "host"))
        yield from self.results(specs)
        if self.stop:
            raise self.stop

    def close(self):
        pass


def _plan(tmp_path):
    from types import SimpleNamespace

    from optlib.engine.store import run_key

    inputs = job.Inputs(SimpleNamespace(name="m", fingerprint="mfp", note=""),
                        SimpleNamespace(name="d", fingerprint="dfp"))
    specs = [job.Spec(i, name, {}, run_key("mfp", "dfp", name, {})) for i, name in enumerate(("float32", "int8"))]
    return inputs, specs, Store(tmp_path / "r.sqlite")


def test_a_result_that_cannot_be_stored_is_that_schemes_failed_row(tmp_path):
    from optlib.engine.sweep import _dispatch

    inputs, specs, store = _plan(tmp_path)
    results = lambda specs: [job.Result(specs[0], "ok", metrics={"odd": object()}, artifact=b"x"),  # noqa: E731
                             job.Result(specs[1], "ok", metrics={"size_bytes": 1}, artifact=b"y")]
    rows = {}
    _dispatch(_Executor(results), inputs, specs, store, lambda *a, **k: None, rows)
    assert rows[0]["status"] == "failed" and "could not be stored: TypeError" in rows[0]["error"]
    assert rows[1]["status"] == "ok" and rows[1]["size_bytes"] == 1
    assert [r.name for r in store.artifacts.iterdir()] == [f"int8-{specs[1].key}-{rows[1]['id']}.tflite"]  # no orphan


def test_a_sweep_stopped_half_way_leaves_no_row_running(tmp_path):
    from optlib.engine.sweep import _dispatch

    inputs, specs, store = _plan(tmp_path)
    results = lambda specs: [job.Result(specs[0], "ok", metrics={}, artifact=b"x")]  # noqa: E731
    with pytest.raises(KeyboardInterrupt):
        _dispatch(_Executor(results, stop=KeyboardInterrupt()), inputs, specs, store, lambda *a, **k: None, {})
    assert sorted((r["scheme"], r["status"]) for r in store.rows()) == [("float32", "ok"), ("int8", "interrupted")]


def test_how_a_worker_ended_is_said_from_its_exit_status():
    from optlib.engine.processes import how_it_ended

    assert how_it_ended(-9).startswith("was killed by SIGKILL (the kernel's out-of-memory killer")
    assert how_it_ended(-15) == "was killed by SIGTERM"
    assert how_it_ended(0) == "exited with status 0 before it finished"


def test_a_budget_with_a_given_executor_is_refused_before_anything_is_written(tmp_path, tiny_model_path, digits_npz):
    from optlib.engine import sweep

    store = tmp_path / "store" / "r.sqlite"
    with pytest.raises(ValueError, match="budget_s applies to the default executor"):
        sweep.run(str(tiny_model_path), str(digits_npz), "float32", store=str(store), budget_s=5,
                  executor=InProcess())
    assert not store.parent.exists()


class _Recording:
    """Stands in for a Keras model: each output is the sum of its inputs' features; records each batch's size."""

    def __init__(self, outputs=1):
        self.outputs, self.batches = outputs, []

    def predict_on_batch(self, x):
        xs = x if isinstance(x, list) else [x]
        self.batches.append(len(xs[0]))
        total = sum(a.reshape(len(a), -1).sum(axis=1, keepdims=True) for a in xs)
        return [total * (k + 1) for k in range(self.outputs)] if self.outputs > 1 else total


def test_a_model_of_unknown_inputs_gives_its_outputs_through_predict_on_batch(monkeypatch):
    context = _context(monkeypatch, [0] * 150)
    context.data.xs_test = [np.arange(150 * 4, dtype=np.float32).reshape(150, 4)]
    model = _Recording()
    found = context.keras_outputs(model)[0]
    assert model.batches == [64, 64, 22]
    assert found.shape == (150, 1) and np.array_equal(found[:, 0], context.data.xs_test[0].sum(axis=1))
    two = _Recording(outputs=2)  # several inputs and outputs
    outputs = job.keras_predict(two, [np.ones((5, 3), np.float32), np.ones((5, 2), np.int32)], 5, 2)
    assert two.batches == [5] and [o.shape for o in outputs] == [(5, 1), (5, 1)]
    assert np.array_equal(outputs[1], 2 * outputs[0])


def test_large_inputs_go_through_keras_in_smaller_batches():
    """64 small inputs at a time, 16 images of 224x224x3 (faster, with the same outputs), at least one."""
    assert job.keras_batch([np.zeros((2, 28, 28, 1))]) == 64
    assert job.keras_batch([np.zeros((2, 224, 224, 3))]) == 16
    assert job.keras_batch([np.zeros((2, 224, 224, 3)), np.zeros((2, 224, 224, 3))]) == 8  # values of every input
    assert job.keras_batch([np.zeros((1, 4000, 4000, 3))]) == 1
    model = _Recording()
    job.keras_predict(model, [np.zeros((40, 224, 224, 3), np.float32)], 40, 1)
    assert model.batches == [16, 16, 8]


def test_the_float_models_outputs_are_traced_once_and_equal_predict_on_batchs():
    """The last batch of another size (22 of 150) traces nothing again, and every output is predict_on_batch's,
    bit for bit (padding that batch to 64 changed the last sample's softmax here)."""
    from optlib._keras import keras, set_seed

    k, traces = keras(), []

    def build():
        set_seed(0)
        image, tokens = k.Input((8, 8, 1)), k.Input((5,))
        x = k.layers.BatchNormalization()(k.layers.Conv2D(4, 3, activation="relu")(image))
        x = k.layers.Lambda(lambda t: traces.append(1) or t)(x)  # Python runs once per trace
        x = k.layers.Concatenate()([k.layers.Flatten()(x), k.layers.Dense(3)(tokens)])
        return k.Model([image, tokens], [k.layers.Dense(10, activation="softmax")(x), k.layers.Dense(1)(x)])

    rng = np.random.default_rng(0)
    xs = [rng.uniform(0, 1, (150, 8, 8, 1)).astype(np.float32), rng.uniform(-1, 1, (150, 5)).astype(np.float32)]
    model = build()
    built = len(traces)
    found = job.keras_predict(model, xs, 150, 2)
    assert len(traces) - built == 1  # one trace for batches of 64 and of 22
    expected = build()
    unpadded = [expected.predict_on_batch([x[i:i + 64] for x in xs]) for i in range(0, 150, 64)]  # 64, 64, 22
    for number, outputs in enumerate(found):
        assert outputs.dtype == np.float32
        assert np.array_equal(outputs, np.concatenate([np.asarray(c[number]) for c in unpadded])), number


def test_the_float_models_outputs_are_made_once_and_read_back_by_the_other_workers(monkeypatch, tmp_path):
    monkeypatch.setenv("OPTLIB_HOME", str(tmp_path))
    first = _context(monkeypatch, [1, 2, 3] * 50)
    calls = []
    first.model.predict_on_batch = lambda x: calls.append(len(x)) or _Scores(0).predict(x) + len(calls)
    made = first.keras_outputs(first.model)
    assert first.float_outputs_reused is False and calls == [64, 64, 22]
    second = _context(monkeypatch, [1, 2, 3] * 50)  # another worker: the same model and test split
    second.model.predict_on_batch = lambda x: calls.append(len(x)) or _Scores(0).predict(x)
    read = second.keras_outputs(second.model)
    assert second.float_outputs_reused is True and calls == [64, 64, 22]  # nothing run again
    assert len(read) == len(made) == 1 and read[0].dtype == made[0].dtype and np.array_equal(read[0], made[0])
    assert list(tmp_path.glob("cache/float32/*/outputs-*.npz"))
    other = _context(monkeypatch, [1, 2] * 50)  # another test split: made again
    other.model.predict_on_batch = lambda x: calls.append(len(x)) or _Scores(0).predict(x)
    other.keras_outputs(other.model)
    assert other.float_outputs_reused is False and calls[3:] == [64, 36]
    fine_tuned = _Scores(3)  # any other model's outputs are its own, never shared
    assert first.keras_outputs(fine_tuned)[0][:, 3].all() and first.float_outputs_reused is False
