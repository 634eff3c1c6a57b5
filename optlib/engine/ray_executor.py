"""Run a sweep's jobs on a Ray cluster: :class:`RayCluster`, an :class:`~optlib.engine.executors.Executor`.

    python -m optlib sweep --model digits_cnn --data digits --executor ray [--ray-address HOST:PORT]

With no address (and no ``RAY_ADDRESS``) it starts Ray on this machine for the sweep and stops it
at the end; with one it joins that cluster. A Ray started here has 127.0.0.1 as its node's address
and listens on loopback only: every TCP server of it (the GCS, the raylet and its object manager,
the runtime env and dashboard agents, the metrics ports when Ray's full install has them, the gRPC
server of the driver and of every Ray worker) is bound to 127.0.0.1; nothing on the network can
reach it or join it (:func:`_start_on_loopback`).

Each job is one Ray task asking for ``cpus`` CPUs;
the task sets TensorFlow's and LiteRT's thread counts to that share. The model and the data
travel by value: the driver reads their bytes once per sweep and puts them in Ray's object
store (``ray.put``); a task writes them to its own temporary folder and runs the job in a sandboxed
worker process of its own (:class:`~optlib.engine.executors.LocalWorkers`, one process: the sandbox, the
worker memory budget, plain-data answers), which each Ray worker process keeps, with the loaded model and
data, for the next job of the same sweep. Results, artifacts included,
come back to the driver, which alone writes the store. Job progress comes back through a small
actor on the driver's node.

A job lost with its node (or its worker process) is run once more; lost again, it is 'failed'
with the reason. Cancelling (Ctrl-C, the app's Stop) cancels every task of the sweep.

With ``latency_resource``, every latency of the sweep is timed again, after all its builds and
one at a time, by a task that needs that Ray custom resource: start one node with
``--resources='{"latency": 1}'`` and the sweep's figures all come from that node.

Ray is imported only when this executor is used: ``import optlib`` never imports it.
"""

import dataclasses
import io
import os
import secrets
import shutil
import tempfile
import threading
import time
import zipfile
from pathlib import Path

from optlib import paths
from optlib.engine import job
from optlib.engine.executors import TIMED_OUT, Cancelled, Executor
from optlib.errors import InputError, first_line

LOST = "lost twice with the machine or worker process running it ({why})"
RETRIES = 1  # a job lost with its node is run once more
# Jobs run in a sandboxed worker of the Ray task; the latency node's timing task loads the model itself.
UNSANDBOXED = ("'{name}' is a model file, and the latency node's timing runs outside optlib's sandbox: leave out "
               "--latency-node, or add --trust if you made the file yourself.")
# The node address of a Ray started here. Ray 2.60 binds its servers to loopback only when the node's address
# is 127.0.0.1 (its "localhost"); for any other address, 127.0.0.2 included, its C++ gRPC servers (GCS, raylet,
# every worker) listen on all interfaces, and so do its agents' gRPC and metrics ports. But ray.init replaces
# a 127.0.0.1 node address with the machine's network address unless Ray takes this machine for one that
# joins no cluster (ray_constants.ENABLE_RAY_CLUSTER false, as on Windows and macOS): :func:`_start_on_loopback`.
LOCALHOST = "127.0.0.1"
# A loopback address other than 127.0.0.1, which `ray start --node-ip-address` keeps as given (the test
# cluster's address). Ray does not take it for localhost: its servers then listen on all interfaces.
LOOPBACK = "127.0.0.2"
SOCKET_PATH_ROOM = 40  # Ray's socket paths add ~70 characters to its temp dir; Unix allows ~107


def temp_dir():
    """Ray's temporary folder for a Ray this process starts: under the data folder when its path is
    short enough for Ray's Unix sockets, else a short private folder in the system's temp dir."""
    folder = paths.data_dir() / "ray"
    if len(str(folder)) <= SOCKET_PATH_ROOM:
        folder.mkdir(exist_ok=True)
        return str(folder)
    return tempfile.mkdtemp(prefix="ray-optlib-")


def runtime_env():
    """What every task's process needs: legacy Keras before TensorFlow loads, quiet native logs,
    the same scheme plugins, and optlib's own code (shipped by Ray, so nodes need only the packages)."""
    env = {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    if os.environ.get("OPTLIB_PLUGINS"):
        env["OPTLIB_PLUGINS"] = os.environ["OPTLIB_PLUGINS"]
    return {"env_vars": env, "py_modules": [str(Path(__file__).resolve().parents[1])]}


def private_token():
    """Token authentication for a Ray started here, with a token of this process's own (Ray would otherwise
    write one to ~/.ray, outside the project's folder); its workers inherit it."""
    if not os.environ.get("RAY_AUTH_TOKEN") and not os.environ.get("RAY_AUTH_TOKEN_PATH"):
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(16)


_SHARED = {"users": 0, "folder": None}  # this process's one Ray: its users, and the folder of a Ray started here
_SHARED_LOCK = threading.Lock()


def connect(address=None):
    """Join the Ray cluster at ``address`` (or ``$RAY_ADDRESS``), or start Ray here; pair with :func:`disconnect`.

    Ray is one per process: the app's server shares it between the sweeps of every browser session. Each
    sweep connects and disconnects, and a Ray started here is shut down when the last of them leaves, not
    under a sweep that joined it a moment before.

    Raises:
        InputError: the cluster cannot be reached.
    """
    address = address or os.environ.get("RAY_ADDRESS") or None
    with _SHARED_LOCK:
        if not address:
            private_token()  # before Ray is imported: it reads the token once
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a Ray of our own reports to nobody
        import ray

        if not ray.is_initialized():
            options = {"runtime_env": runtime_env(), "log_to_driver": bool(os.environ.get("OPTLIB_NATIVE_LOGS")),
                       "logging_level": "ERROR", "configure_logging": False}
            try:
                if address:
                    ray.init(address=address, **options)
                else:
                    folder = temp_dir()
                    _start_on_loopback(ray, folder, options)
                    _SHARED["folder"] = folder
            except (ConnectionError, RuntimeError, ValueError) as problem:
                raise InputError(f"Could not reach the Ray cluster at {address or 'this machine'}: "
                                 f"{first_line(problem)}. Start it (ray start --head) or check --ray-address / "
                                 "RAY_ADDRESS.") from None
        _SHARED["users"] += 1


def _start_on_loopback(ray, folder, options):
    """Start Ray on this machine with every server of it listening on loopback only (see :data:`LOCALHOST`).

    Only while ``ray.init`` runs does Ray take this machine for one that joins no cluster, so that it keeps
    127.0.0.1 as the node's address instead of the machine's network address; once started, Ray answers
    with that node's address. Not through ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``: read once, when Ray is first
    imported, and inherited by every child process, it would also stop a later ``ray start --address``.
    """
    from ray._private import ray_constants

    cluster = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(address="local", include_dashboard=False, _temp_dir=folder, _node_ip_address=LOCALHOST, **options)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = cluster


def disconnect():
    """One user of this process's Ray leaves; the last one shuts down a Ray started here (and its scratch folder)."""
    with _SHARED_LOCK:
        _SHARED["users"] = max(0, _SHARED["users"] - 1)
        folder = _SHARED["folder"]
        if _SHARED["users"] or folder is None:  # others still use it, or it is a cluster's (left running)
            return
        import ray

        ray.shutdown()
        _SHARED["folder"] = None
        if Path(folder).parent != paths.data_dir():  # a scratch folder of ours, not data/ray
            shutil.rmtree(folder, ignore_errors=True)


# --- What travels: the model and the data by value ---------------------------

def _zip_folder(folder):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for file in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            bundle.write(file, Path(folder.name) / file.relative_to(folder))
    return buffer.getvalue()


def _file(path, kind):
    """(bytes, kind) of a model or data file or folder (a folder travels as a .zip)."""
    path = Path(path)
    return (_zip_folder(path), "zip") if path.is_dir() else (path.read_bytes(), kind)


def pack(inputs, zoo_bytes=None):
    """The sweep's inputs as values: ``{"inputs": Inputs without local paths, "files": {name: bytes}}``.

    ``zoo_bytes`` is a function returning a built-in zoo model's file, for a zoo model trained here
    (digits_cnn): it travels as that file.
    """
    model, data, files = inputs.model, inputs.data, {}
    if model.kind == "zoo" and model.ref == "digits_cnn":
        files["model"] = zoo_bytes()
        model = dataclasses.replace(model, kind="keras", path=Path("model.keras"))
    elif model.kind == "zoo":
        if model.weights:
            files["weights"] = Path(model.weights).read_bytes()
            model = dataclasses.replace(model, weights=Path("weights.h5"))
    else:
        files["model"], kind = _file(model.path, model.kind)
        model = dataclasses.replace(model, ref=model.name, kind=kind, path=Path(
            "model" + (".zip" if kind == "zip" else Path(model.path).suffix)))
    if data.path is not None:
        files["data"], kind = _file(data.path, data.kind)
        data = dataclasses.replace(data, ref=data.name, kind=kind, path=Path(
            "data" + (".zip" if kind == "zip" else Path(data.path).suffix)))
    return {"inputs": dataclasses.replace(inputs, model=model, data=data), "files": files}


def unpack(payload, folder):
    """The :class:`~optlib.engine.job.Inputs` of a packed payload, its files written under ``folder``."""
    inputs = payload["inputs"]
    model, data = inputs.model, inputs.data
    names = {"model": model.path, "data": data.path, "weights": model.weights}
    for name, content in payload["files"].items():
        (Path(folder) / names[name]).write_bytes(content)
    model = dataclasses.replace(model, path=model.path and Path(folder) / model.path,
                                weights=model.weights and Path(folder) / model.weights)
    data = dataclasses.replace(data, path=data.path and Path(folder) / data.path)
    return dataclasses.replace(inputs, model=model, data=data)


def digits_cnn_bytes(train):
    """The built-in digits CNN's file from this machine's zoo cache, trained by ``train()`` (a Ray task that
    returns the file's bytes) and cached here if missing."""
    from optlib.inputs import models

    cached = paths.zoo_dir() / f"{models.DIGITS_CNN_RECIPE}.keras"
    if not cached.is_file():
        content = train()
        handle, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".keras")
        with os.fdopen(handle, "wb") as sink:
            sink.write(content)
        os.replace(tmp, cached)
    return cached.read_bytes()


# --- In a Ray worker process -----------------------------------------------

_LOADED = {}  # the one (identity, folder, Context) this worker process keeps for the next job


def _threads(cpus):
    """Match TensorFlow's and LiteRT's thread counts to the task's CPU share (Ray sets OMP_NUM_THREADS)."""
    # Read by optlib._keras when TensorFlow first loads in this worker, and by LiteRT's interpreters for
    # accuracy (optlib.engine.machine). TensorFlow keeps the share it loaded with for the worker's life.
    os.environ["OPTLIB_CPUS"] = str(cpus)


class _Sender:
    """Job events to the driver's mailbox actor; ``flush`` waits until all of them arrived."""

    def __init__(self, mailbox):
        self.mailbox, self.last, self.sent_at = mailbox, None, 0.0

    def __call__(self, event):
        now = time.monotonic()
        if event.stage == "running" and now - self.sent_at < 0.5:
            return  # progress within a job: twice a second is plenty
        self.sent_at = now
        self.last = self.mailbox.put.remote(event)
        if event.stage == "starting":
            self.flush()  # the driver records the start before anything else of this job

    def flush(self):
        import ray

        if self.last is not None:
            ray.get(self.last)


def _context(payload, events):
    identity = payload["inputs"].identity
    if _LOADED.get("identity") != identity:
        _LOADED.clear()
        folder = tempfile.mkdtemp(prefix="optlib-ray-")
        _LOADED.update(identity=identity, folder=folder, context=job.Context(unpack(payload, folder), events))
    context = _LOADED["context"]
    context.events = events
    return context


def _sandboxed(payload):
    """(inputs, a worker) for the packed inputs: the job runs in a sandboxed worker process of this Ray worker
    (:class:`~optlib.engine.executors.LocalWorkers`, one process, the worker memory budget), as a local sweep's
    would; kept for the next job of the same sweep. The Ray worker itself never loads the model."""
    from optlib.engine.executors import LocalWorkers

    identity = payload["inputs"].identity
    if _SANDBOXED.get("identity") != identity:
        if _SANDBOXED.get("workers") is not None:
            _SANDBOXED["workers"].close()
        _SANDBOXED.clear()
        folder = tempfile.mkdtemp(prefix="optlib-ray-")
        _SANDBOXED.update(identity=identity, inputs=unpack(payload, folder), workers=LocalWorkers(count=1))
    return _SANDBOXED["inputs"], _SANDBOXED["workers"]


_SANDBOXED = {}


def run_job(payload, spec, cpus, mailbox):
    """A Ray task: one job on the packed inputs, in a sandboxed worker; ("done", Result) or ("fatal", message)."""
    _threads(cpus)
    send = _Sender(mailbox)
    try:
        inputs, workers = _sandboxed(payload)
        [result] = list(workers.map(inputs, [spec], send))
    except InputError as problem:
        return "fatal", str(problem)
    except Exception as problem:  # noqa: BLE001 -- any loading error is the sweep's one message, as locally
        return "fatal", f"{type(problem).__name__}: {first_line(problem)}"
    send.flush()
    return "done", _on_node(result, cpus)


def _on_node(result, cpus):
    """The Result with the Ray node it ran on (``ray_node``) and its CPU share (``ray_cpus``)."""
    import ray

    return dataclasses.replace(result, metrics={**result.metrics, "ray_node": ray.get_runtime_context().get_node_id(),
                                                "ray_cpus": cpus})


def time_latency(payload, spec, artifact, cpus):
    """A Ray task on the latency node: the latency figure of one built model, as its job would time it."""
    from optlib.engine import measure

    _threads(cpus)
    context = _context(payload, lambda event: None)
    with tempfile.TemporaryDirectory(prefix="optlib-latency-") as folder:
        path = Path(folder) / "model.tflite"
        path.write_bytes(artifact)
        load = os.getloadavg()[0]
        figure = measure.latency(path, context.data.x_test[0], spec.settings["threads"], spec.settings["runs"],
                                 spec.settings["warmup"])
    import ray

    return {**figure, "load_1m": round(load, 2), "ray_node": ray.get_runtime_context().get_node_id()}


def train_digits_cnn():
    """A Ray task: the built-in digits CNN's file, trained in the worker (for a driver that has none cached)."""
    from optlib.inputs import models

    models._digits_cnn()
    return (paths.zoo_dir() / f"{models.DIGITS_CNN_RECIPE}.keras").read_bytes()


class _Mailbox:
    """An actor on the driver's node that keeps job events until the driver takes them."""

    def __init__(self):
        self.items = []

    def put(self, item):
        self.items.append(item)

    def take(self):
        items, self.items = self.items, []
        return items


# --- The driver's side ------------------------------------------------------

class RayCluster(Executor):
    """Jobs as Ray tasks, on a cluster or on a Ray started here.

    Args:
        address: the cluster (``HOST:PORT`` or ``ray://...``); default ``$RAY_ADDRESS``, else start Ray here.
        cpus: CPUs each job asks for; TensorFlow and LiteRT use that many threads.
        budget_s: a job running longer than this is cancelled: ``timeout``.
        latency_resource: a Ray custom resource; every latency is timed again on a node that has it,
            after all builds, one at a time.
    """

    def __init__(self, address=None, cpus=1, budget_s=None, latency_resource=None):
        self.address, self.cpus, self.budget_s, self.latency_resource = address, cpus, budget_s, latency_resource
        self.ray, self.mailbox, self.packed = None, None, (None, None)

    def _ready(self):
        if self.ray is None:
            connect(self.address)  # before importing Ray itself (see private_token)
            import ray

            self.ray = ray
            self.job_task = ray.remote(run_job)
            self.latency_task = ray.remote(time_latency)
        if self.mailbox is None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = NodeAffinitySchedulingStrategy(self.ray.get_runtime_context().get_node_id(), soft=False)
            self.mailbox = self.ray.remote(num_cpus=0)(_Mailbox).options(scheduling_strategy=here).remote()

    def _payload(self, inputs):
        """The inputs in the object store, put once per sweep (and kept while the inputs stay the same)."""
        if self.packed[0] != inputs.identity:
            train = self.ray.remote(train_digits_cnn).options(num_cpus=self.cpus)
            payload = pack(inputs, lambda: digits_cnn_bytes(lambda: self.ray.get(train.remote())))
            self.packed = (inputs.identity, self.ray.put(payload))
        return self.packed[1]

    def close(self):
        ray, mailbox = self.ray, self.mailbox
        self.ray, self.mailbox, self.packed = None, None, (None, None)
        if ray is None:
            return
        try:
            if mailbox is not None:
                ray.kill(mailbox)
        finally:  # even if Ray is gone already: this sweep no longer uses it
            disconnect()

    def map(self, inputs, specs, events, cancel=None):
        """Submit every job at once (Ray queues what the cluster cannot run yet); yield Results as they finish."""
        if self.latency_resource and inputs.model.kind != "zoo" and not inputs.trusted:
            raise InputError(UNSANDBOXED.format(name=inputs.model.name))
        self._ready()
        ray = self.ray
        if self.latency_resource and not ray.cluster_resources().get(self.latency_resource):
            raise InputError(f"No node of the Ray cluster has the resource '{self.latency_resource}' to time "
                             f"latencies on; start one with --resources='{{\"{self.latency_resource}\": 1}}'.")
        payload = self._payload(inputs)
        running, tries, started, finished, held = {}, {}, {}, set(), []

        def submit(spec):
            tries[spec.index] = tries.get(spec.index, 0) + 1
            ref = self.job_task.options(num_cpus=self.cpus, max_retries=0, name=f"optlib:{spec.scheme}").remote(
                payload, spec, self.cpus, self.mailbox)
            running[ref] = spec

        def deliver():
            for event in ray.get(self.mailbox.take.remote()):
                if event.index in finished:
                    continue  # a late word from an attempt that was lost
                if event.stage == "starting":
                    started[event.index] = time.monotonic()
                events(event)

        for spec in specs:
            submit(spec)
        try:
            while running:
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
                deliver()
                for ref in ready:
                    spec = running.pop(ref)
                    result = self._outcome(ref, spec, tries, submit)
                    if result is None:
                        continue  # lost, submitted again
                    finished.add(spec.index)
                    if self.latency_resource and result.status == "ok":
                        held.append(result)
                    else:
                        yield result
                for ref, spec in list(running.items()):
                    if self.budget_s and spec.index in started \
                            and time.monotonic() - started[spec.index] > self.budget_s:
                        ray.cancel(ref, force=True)
                        del running[ref]
                        finished.add(spec.index)
                        yield job.gave_up(spec, "timeout", TIMED_OUT.format(budget=self.budget_s))
            for result in held:
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                yield self._retimed(payload, result, events)
        except BaseException:
            for ref in running:
                ray.cancel(ref, force=True)
            raise

    def _outcome(self, ref, spec, tries, submit):
        """The Result of a finished task; None if it was lost and submitted again."""
        ray = self.ray
        try:
            kind, value = ray.get(ref)
        except (ray.exceptions.TaskCancelledError, ray.exceptions.RayTaskError) as problem:
            return job.gave_up(spec, "failed", f"{type(problem).__name__}: {first_line(problem)}")
        except ray.exceptions.RayError as problem:  # the node or the worker process was lost
            if tries[spec.index] <= RETRIES:
                submit(spec)
                return None
            return job.gave_up(spec, "failed", LOST.format(why=f"{type(problem).__name__}: {first_line(problem)}"))
        if kind == "fatal":
            raise InputError(value)
        return value

    def _retimed(self, payload, result, events):
        """The Result with its latency timed on the latency node."""
        spec = result.spec
        events(job.Event(spec.index, spec.scheme, "running", 0.95, f"timing latency on '{self.latency_resource}'"))
        try:
            figure = self.ray.get(self.latency_task.options(num_cpus=self.cpus, max_retries=RETRIES,
                                                            resources={self.latency_resource: 1}).remote(
                payload, spec, result.artifact, self.cpus))
        except self.ray.exceptions.RayError as problem:
            return dataclasses.replace(result, status="failed", artifact=None,
                                       error=f"its latency could not be timed on '{self.latency_resource}': "
                                             f"{type(problem).__name__}: {first_line(problem)}")
        return dataclasses.replace(result, metrics={**result.metrics, "latency_ms": figure,
                                                    "latency_resource": self.latency_resource})
