"""Ray is optional: importing optlib (the Ray executor's module included) never imports Ray, and the
inputs a Ray task receives are values, not paths on the driver's machine. A Ray the sweep starts on this machine
(no address given) is its own, stopped with it, and listens on loopback only."""

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from optlib.engine.processes import asked_by

from optlib.engine import ray_executor
from optlib.engine.sweep import plan


def test_importing_optlib_and_the_ray_executor_does_not_import_ray():
    code = ("import sys, optlib, optlib.cli, optlib.engine.sweep, optlib.engine.ray_executor\n"
            "optlib.cli.build_parser()\n"
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_model_and_data_travel_as_bytes_and_unpack_the_same(tmp_path, tiny_model_path, digits_npz):
    inputs, _ = plan(str(tiny_model_path), str(digits_npz), "float32")
    payload = ray_executor.pack(inputs)
    assert payload["files"] == {"model": tiny_model_path.read_bytes(), "data": digits_npz.read_bytes()}
    assert str(tiny_model_path.parent) not in repr(payload["inputs"])  # no path of the driver's machine
    unpacked = ray_executor.unpack(payload, tmp_path)
    assert unpacked.identity == inputs.identity
    assert unpacked.model.path.read_bytes() == tiny_model_path.read_bytes()
    assert unpacked.data.path.read_bytes() == digits_npz.read_bytes()


def test_a_folder_travels_as_a_zip(tmp_path, digits_arrays):
    from PIL import Image

    folder = tmp_path / "images"
    x_train, y_train, _, _ = digits_arrays
    for index in range(20):
        target = folder / str(y_train[index] % 2)
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray((x_train[index] * 15).astype("uint8")).save(target / f"{index}.png")
    inputs, _ = plan("digits_cnn", str(folder), "float32")
    payload = ray_executor.pack(inputs, zoo_bytes=lambda: b"model bytes")
    assert payload["inputs"].data.kind == "zip" and payload["inputs"].model.kind == "keras"
    unpacked = ray_executor.unpack(payload, tmp_path)
    assert unpacked.model.path.read_bytes() == b"model bytes"
    from optlib.inputs import archive

    archive.extract(unpacked.data.path, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.png")) == sorted(p.name for p in folder.rglob("*.png"))


def _is_loopback(ip):
    """127.x or ::1, also as an IPv4-mapped IPv6 address (gRPC's ``[::ffff:127.0.0.1]``)."""
    address = ipaddress.ip_address(ip.split("%")[0])
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback


def _name(process):
    try:
        line = process.cmdline()
    except psutil.Error:
        return "?"
    if not line:
        return "?"
    if line[0].startswith("ray::"):
        return line[0]  # a Ray worker's title: ray::IDLE, ray::RuntimeEnvAgent, ray::optlib:float32, ...
    program = Path(line[0]).name
    return " ".join([program, *line[1:3]]) if program.startswith("python") else program  # gcs_server, raylet


def _listening(root, home):
    """{(ip, port, pid, name)} of the TCP sockets listening in the sweep's process tree (the CLI, the Ray it
    started and that Ray's workers), in any process naming the sweep's folder, and in the engine children all of
    those asked for."""
    tree = {}
    try:
        parent = psutil.Process(root)
        tree[parent.pid] = parent
        tree.update({child.pid: child for child in parent.children(recursive=True)})
    except psutil.Error:
        pass
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(home in part for part in process.info["cmdline"] or ()):
                tree[process.pid] = process
                tree.update({child.pid: child for child in process.children(recursive=True)})
        except psutil.Error:
            pass
    # the engine children they asked for, forked by the user's shared starter
    tree.update({child.pid: child for child in asked_by(*tree)})
    found = set()
    for pid, process in tree.items():
        try:
            sockets = process.net_connections(kind="tcp")
        except psutil.Error:
            continue
        found.update((s.laddr.ip, s.laddr.port, pid, _name(process)) for s in sockets if s.status == psutil.CONN_LISTEN)
    return found


def test_the_cli_starts_ray_here_for_the_sweep_when_no_cluster_is_named_on_loopback_only(tiny_model_path,
                                                                                         digits_npz):
    """No address and no RAY_ADDRESS: a Ray of the sweep's own, with its own token (nothing in ~/.ray), stopped at
    the end. It listens on loopback only: every listening TCP socket of every one of its processes (GCS, raylet,
    agents, the driver's and the workers' gRPC servers) is bound to a 127.x address, none to all interfaces
    (0.0.0.0, ``*``, ``::``)."""
    home = Path(tempfile.mkdtemp(prefix="o-", dir="/tmp"))  # short: Ray's socket paths must fit
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(OPTLIB_HOME=str(home), HOME=str(home / "user"))
    seen = set()
    try:
        # Its output goes to files, not pipes: unread pipes would stall it once full.
        with tempfile.TemporaryFile("w+") as out_file, tempfile.TemporaryFile("w+") as err_file:
            with subprocess.Popen([sys.executable, "-m", "optlib", "sweep", "--model", str(tiny_model_path),
                                   "--data", str(digits_npz), "--schemes", "float32,dynamic", "--param", "runs=3",
                                   "--executor", "ray", "--json"], stdout=out_file, stderr=err_file, text=True,
                                  env=env) as sweep:
                deadline = time.monotonic() + 600
                while sweep.poll() is None and time.monotonic() < deadline:  # look again and again while it runs
                    seen |= _listening(sweep.pid, str(home))
                    time.sleep(0.2)
                if sweep.poll() is None:
                    sweep.kill()
                sweep.wait()
            out_file.seek(0)
            err_file.seek(0)
            out, err = out_file.read(), err_file.read()
        assert sweep.returncode == 0, err[-3000:]
        rows = json.loads(out)["results"]
        assert [(row["scheme"], row["status"]) for row in rows] == [("float32", "ok"), ("dynamic", "ok")]
        assert all(row["ray_node"] for row in rows)
        assert (home / "ray").is_dir() and not (home / "user" / ".ray").exists()

        listing = "\n".join(f"{ip}:{port}  pid {pid}  {name}" for ip, port, pid, name in sorted(seen))
        names = {name for *_, name in seen}
        # Not vacuous: the GCS, the raylet and at least one Ray worker were caught listening.
        assert any("gcs_server" in name for name in names), listing
        assert any("raylet" in name for name in names), listing
        assert any(name.startswith("ray::") for name in names), listing
        wide = sorted(socket for socket in seen if not _is_loopback(socket[0]))
        assert not wide, f"listening beyond loopback: {wide}\nall:\n{listing}"
    finally:
        leftover = subprocess.run(["pgrep", "-f", str(home / "ray")], capture_output=True, text=True, check=False)
        shutil.rmtree(home, ignore_errors=True)
    assert leftover.stdout.strip() == ""  # the sweep's Ray stopped with it


def test_the_local_ray_is_shut_down_by_the_last_sweep_using_it_not_the_first(monkeypatch, tmp_path):
    """Two browser sessions' sweeps in one server: the second joins the Ray the first started; the first ending
    must not shut it down under the second (whose jobs then failed), the last one ending must."""
    import types

    class Remote:  # what ray.remote gives: a task or actor class whose .options(...).remote() submits
        def options(self, **options):
            return self

        def remote(self, *args):
            return "handle"

    calls = []
    fake = types.SimpleNamespace(initialized=False, kill=lambda handle: None)
    fake.is_initialized = lambda: fake.initialized
    fake.init = lambda **options: (calls.append("init"), setattr(fake, "initialized", True))
    fake.shutdown = lambda: (calls.append("shutdown"), setattr(fake, "initialized", False))
    fake.remote = lambda *function, **options: Remote() if function else (lambda cls: Remote())
    fake.get_runtime_context = lambda: types.SimpleNamespace(get_node_id=lambda: "node")
    strategies = types.SimpleNamespace(NodeAffinitySchedulingStrategy=lambda node, soft: node)
    constants = types.SimpleNamespace(ENABLE_RAY_CLUSTER=True)  # set aside while a Ray is started here
    monkeypatch.setitem(sys.modules, "ray._private", types.SimpleNamespace(ray_constants=constants))
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setitem(sys.modules, "ray.util", types.SimpleNamespace(scheduling_strategies=strategies))
    monkeypatch.setitem(sys.modules, "ray.util.scheduling_strategies", strategies)
    monkeypatch.setenv("OPTLIB_HOME", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray_executor, "runtime_env", dict)
    monkeypatch.setattr(ray_executor, "_SHARED", {"users": 0, "folder": None})

    first, second = ray_executor.RayCluster(), ray_executor.RayCluster()
    first._ready()  # session A's sweep starts Ray in the server
    second._ready()  # session B's sweep joins it
    first.close()  # A's sweep ends
    assert calls == ["init"] and fake.initialized
    second.close()  # B's sweep ends: the last user
    assert calls == ["init", "shutdown"] and not fake.initialized


def test_a_hostile_model_file_on_ray_is_loaded_in_the_sandbox_and_writes_nothing(tmp_path, digits_npz):
    """A Ray task runs its job in a sandboxed worker: with the allowlist switched off (as if bypassed), a .keras
    whose slicing layer writes a file does not write it."""
    import hostile_models

    path = hostile_models.keras_slicing_write_file(tmp_path, tmp_path / "pwned.marker")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAY_")}, "OPTLIB_HOME": str(tmp_path / "h"),
           "HOME": str(tmp_path / "user"), "OPTLIB_TEST_SKIP_ALLOWLIST": "1"}
    done = subprocess.run([sys.executable, "-m", "optlib", "sweep", "--model", str(path), "--data",
                           str(digits_npz), "--schemes", "float32", "--executor", "ray"], capture_output=True,
                          text=True, env=env, timeout=600, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "the sandbox stopped it" in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "pwned.marker").exists()
