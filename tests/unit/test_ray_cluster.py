"""Sweeps through a real two-node Ray cluster on this machine: the same rows as the local executor,
latencies timed on one chosen node, and a node killed mid-sweep costing nothing but a retry."""

import threading

import pytest
from raycluster import HEAD, LocalCluster, wait_for

from optlib.engine import sweep
from optlib.engine.executors import LocalWorkers
from optlib.engine.ray_executor import RayCluster
from optlib.engine.store import Store

FAST = {"runs": "3", "warmup": "1", "rep_samples": "16", "epochs": "1", "train_samples": "256"}
GRID = {**FAST, "prune.sparsity": "0.3,0.9"}
SCHEMES = "float32,int8,prune,cluster"  # two post-training schemes, a grid of 2 prune jobs and a cluster job


@pytest.fixture(scope="session")
def cluster():
    """A head and a second node, one CPU each, on loopback; stopped (only these processes) at the end."""
    started = LocalCluster()
    try:
        yield started.start()
    finally:
        started.stop()


def _same(row):
    return (row["scheme"], tuple(sorted(row["settings"].items())), row["size_bytes"], row["gzip_bytes"],
            row["accuracy"])


def test_a_grid_sweep_on_the_cluster_gives_the_local_executors_rows(cluster, tmp_path, monkeypatch):
    local_store, ray_store = Store(tmp_path / "local.sqlite"), Store(tmp_path / "ray.sqlite")
    # The same one-CPU share as each Ray task: TensorFlow's sums then add up in the same order, bit for bit.
    monkeypatch.setenv("OPTLIB_CPUS", "1")
    with LocalWorkers() as here:
        local = sweep.run("digits_cnn", "digits", SCHEMES, GRID, local_store, executor=here)["results"]
    with RayCluster(cluster.address) as ray_executor:
        on_ray = sweep.run("digits_cnn", "digits", SCHEMES, GRID, ray_store, executor=ray_executor)["results"]

    assert len(on_ray) == 5 and all(row["status"] == "ok" for row in local + on_ray), on_ray
    assert [_same(row) for row in on_ray] == [_same(row) for row in local]
    assert sorted(row["settings"]["sparsity"] for row in on_ray if row["scheme"] == "prune") == [0.3, 0.9]
    assert [row["scheme"] for row in on_ray].count("cluster") == 1
    stored = {row["key"]: row for row in ray_store.rows()}
    assert len(stored) == 5 and all(row["status"] == "ok" for row in stored.values())
    assert {row["id"] for row in on_ray} == {row["id"] for row in stored.values()}
    assert len({row["ray_node"] for row in on_ray}) == 2  # both nodes ran jobs
    assert {row["ray_cpus"] for row in on_ray} == {1}
    for row in on_ray:  # every latency says where it was timed
        assert row["latency_ms"]["host"] and row["latency_ms"]["cpu_model"], row["latency_ms"]


def test_latencies_can_all_be_timed_on_one_chosen_node(cluster, tmp_path):
    import ray

    with RayCluster(cluster.address, latency_resource=HEAD) as ray_executor:
        rows = sweep.run("digits_cnn", "digits", "float32,float16,dynamic", FAST, Store(tmp_path / "r.sqlite"),
                         executor=ray_executor)["results"]
        head = {node["NodeID"] for node in ray.nodes() if node["Resources"].get(HEAD)}
    assert all(row["status"] == "ok" for row in rows), rows
    assert {row["latency_ms"]["ray_node"] for row in rows} == head
    assert all(row["latency_resource"] == HEAD for row in rows)


def test_stop_cancels_the_sweeps_tasks_and_leaves_the_store_consistent(cluster, tmp_path):
    store, cancel = Store(tmp_path / "r.sqlite"), threading.Event()

    def progress(event):
        if event.stage == "starting":
            cancel.set()  # Stop as soon as the first job starts

    with RayCluster(cluster.address) as ray_executor:
        rows = sweep.run("digits_cnn", "digits", "prune,cluster", {**FAST, "epochs": "3"}, store,
                         executor=ray_executor, progress=progress, cancel=cancel)["results"]
    assert {row["status"] for row in rows} <= {"interrupted", "cancelled", "ok"}, rows
    assert "running" not in {row["status"] for row in store.rows()}


def test_a_node_killed_mid_sweep_costs_only_a_retry(cluster, tmp_path):
    """The second node dies while running a job: that job runs again on the head, every job ends ok once."""
    store = Store(tmp_path / "r.sqlite")
    second_pids, killed = set(), threading.Event()

    def kill_when_the_second_node_works():
        def busy():
            second_pids.update(process.pid for process in cluster.second_node())
            return any(row["pid"] in second_pids for row in store.rows(status="running"))

        if wait_for(busy, timeout=120):
            killed.set()
            cluster.kill_second_node()

    killer = threading.Thread(target=kill_when_the_second_node_works, daemon=True)
    killer.start()
    with RayCluster(cluster.address) as ray_executor:  # two jobs at once: one on each node
        result = sweep.run("digits_cnn", "digits", "prune,cluster", {**FAST, "epochs": "3"}, store,
                           executor=ray_executor)
    killer.join(5)

    assert killed.is_set()
    rows = result["results"]
    assert len(rows) == 2 and all(row["status"] == "ok" for row in rows), rows
    ok = [row["key"] for row in store.rows(status="ok")]
    assert sorted(ok) == sorted({row["key"] for row in store.rows()})  # every job ok, exactly once
    lost = store.rows(status="interrupted")
    assert lost and all(row["pid"] in second_pids for row in lost)  # the attempt that died with the node
    assert "running" not in {row["status"] for row in store.rows()}
