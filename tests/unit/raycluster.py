"""A real two-node Ray cluster on this machine's loopback interface, for the tests that need one.

``ray start --head`` and ``ray start --address=...`` with one CPU each, a private temporary folder
(short: Ray's Unix socket paths must fit in ~107 characters) and a token of their own. Stopped by
killing exactly the processes it started (found by that folder and its address), never with a
machine-wide ``ray stop``.
"""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from optlib.engine.ray_executor import LOOPBACK

RAY = str(Path(sys.executable).parent / "ray")
SECOND = "optlib_second"  # the second node's custom resource (marks its raylet)
HEAD = "optlib_head"


def _free_port(start=6390):
    for port in range(start, start + 200):
        with socket.socket() as probe:
            try:
                probe.bind((LOOPBACK, port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port for Ray's head")


class LocalCluster:
    """Start with :meth:`start`; ``address`` is what ``ray.init`` / ``--ray-address`` take."""

    def __init__(self):
        self.temp = tempfile.mkdtemp(prefix="ray-optlib-", dir="/tmp")
        self.port = _free_port()
        self.address = f"{LOOPBACK}:{self.port}"
        self.saved = {name: os.environ.get(name) for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_ADDRESS",
                                                               "RAY_USAGE_STATS_ENABLED")}
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16),  # not ~/.ray
                          RAY_USAGE_STATS_ENABLED="0")
        os.environ.pop("RAY_ADDRESS", None)

    def _ray(self, *args):
        done = subprocess.run([RAY, "start", "--num-cpus=1", f"--node-ip-address={LOOPBACK}", "--disable-usage-stats",
                               "--object-store-memory=100000000", *args], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode:
            raise RuntimeError(f"ray start {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    def start(self):
        self._ray("--head", f"--port={self.port}", f"--temp-dir={self.temp}", "--include-dashboard=false",
                  f"--resources={{\"{HEAD}\": 1}}")
        self._ray(f"--address={self.address}", f"--resources={{\"{SECOND}\": 1}}")
        return self

    def _processes(self, *tags):
        """The processes whose command line names one of ``tags``, every process under them, and the engine
        children they asked for (forked by the user's shared starter: no descendants of theirs)."""
        from optlib.engine.processes import asked_by

        found = set()
        for process in psutil.process_iter(["cmdline"]):
            try:
                if process.pid != os.getpid() and any(tag in part for tag in tags
                                                        for part in process.info["cmdline"] or ()):
                    found.add(process)
                    found.update(process.children(recursive=True))
            except psutil.Error:
                pass
        found.update(asked_by(*(process.pid for process in found)))
        return found

    def second_node(self):
        """The second node's raylet, every process under it (its Ray workers) and the jobs they run."""
        return self._processes(f"{SECOND},1")

    def kill_second_node(self):
        """Kill the second node at once, as a machine that is lost would be."""
        for process in self.second_node():
            try:
                process.kill()
            except psutil.Error:
                pass

    def stop(self):
        import ray

        if ray.is_initialized():
            ray.shutdown()
        doomed = self._processes(self.temp, self.address)
        for process in doomed:
            try:
                process.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(list(doomed), timeout=10)
        shutil.rmtree(self.temp, ignore_errors=True)
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def wait_for(condition, timeout=60.0):
    """Poll ``condition`` until it is true (or the timeout passes); return its last value."""
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return value
