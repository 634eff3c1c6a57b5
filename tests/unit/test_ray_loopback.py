"""A Ray the sweep starts on this machine (no address given) listens on loopback only: every listening TCP
socket of every one of its processes (GCS, raylet, agents, the driver's and the workers' gRPC servers) is bound
to a 127.x address, none to all interfaces (0.0.0.0, ``*``, ``::``)."""

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


def test_a_ray_started_for_a_sweep_listens_on_loopback_only(tiny_model_path, digits_npz):
    home = Path(tempfile.mkdtemp(prefix="o-", dir="/tmp"))  # short: Ray's socket paths must fit
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(OPTLIB_HOME=str(home), HOME=str(home / "user"))
    seen = set()
    try:
        with subprocess.Popen([sys.executable, "-m", "optlib", "sweep", "--model", str(tiny_model_path), "--data",
                               str(digits_npz), "--schemes", "float32", "--param", "runs=3", "--executor", "ray",
                               "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as sweep:
            deadline = time.monotonic() + 600
            while sweep.poll() is None and time.monotonic() < deadline:  # look again and again while it runs
                seen |= _listening(sweep.pid, str(home))
                time.sleep(0.2)
            if sweep.poll() is None:
                sweep.kill()
            out, err = sweep.communicate()
        assert sweep.returncode == 0, err[-3000:]
        rows = json.loads(out)["results"]
        assert [(row["scheme"], row["status"]) for row in rows] == [("float32", "ok")] and rows[0]["ray_node"]

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
