"""A process that has imported TensorFlow once, and starts the engine's children as copies of itself.

Every child (a sweep's worker, page work) used to be a fresh interpreter that spent its first seconds
importing TensorFlow: 3-4 s of a core each time, on every sweep and every model a page describes. The
starter pays that once: it imports TensorFlow (and what else :data:`PRELOADED` lists) and
nothing of anyone's, then waits; each child is a fork of it, which then becomes
exactly what ``python -m optlib.engine.child MODULE FD ...`` would be (its own session, working folder,
environment, standard streams, import path) and enters its sandbox before it reads anything
(:mod:`optlib.engine.child`). The fork happens in the starter, a process of one thread that has run no
TensorFlow op, never in the parent (whose threads may hold locks).

:func:`spawn` is what :func:`optlib.engine.processes.start` calls; it gives back a :class:`Forked`, which a
:class:`~optlib.engine.processes.Child` holds like a ``Popen``. Where no starter can serve (a sandboxed
process starting a helper, ``OPTLIB_PRELOAD=0``, a starter that failed), it returns None and the caller
starts a fresh interpreter as before.

One starter serves all of the user's processes that import TensorFlow alike (the same interpreter, this file,
the same import settings: the CLI, app servers, test processes, Ray's workers): the first of them starts it, in a
session of its own, and each process connects to it by an abstract Unix socket name (:func:`_address`); every
later process is served at once instead of importing TensorFlow again (3-5 s of a core). The starter welcomes
only processes of its own user (the kernel says which, ``SO_PEERCRED``), and of those none under
``no_new_privs``, which every sandboxed child is; a process uses the name only if its holder passes the same
check (a sandboxed child can bind a name it cannot connect to), read through a pidfd (:func:`_unsandboxed_peer`).
It is shared only where Landlock keeps sandboxed children from reaching abstract sockets outside their sandbox
(ABI 6 on, :func:`_may_share`); elsewhere, or with ``OPTLIB_SHARED_STARTER=0``, each process starts a starter of
its own, joined to it by a socket pair, which ends with it. A shared starter ends :data:`IDLE_S` after its last
process has gone (``OPTLIB_STARTER_IDLE_S``).

A process and its starter talk over their socket: the process sends a request (JSON) with the child's socket and
standard streams attached (SCM_RIGHTS); the starter answers with the child's pid, and later with its exit
status (the starter is its parent, so only it can reap it). When a process goes away, its socket closes: the
starter kills that process's children (and a starter of its own ends).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading

ENV_SWITCH = "OPTLIB_PRELOAD"  # "0": every child is a fresh interpreter
PARENT_ENV = "OPTLIB_STARTER_PID"  # in a forked child: its parent, the starter (see processes.die_with_parent)
# What `import tensorflow` reads from the environment: a starter serves only children whose values are its own.
IMPORT_SETTINGS = ("TF_", "OMP_", "MKL_", "OPENBLAS_", "XLA_", "KERAS_BACKEND", "CUDA_", "PYTHON", "HOME", "LANG",
                   "LC_", "SKLEARN_", "SCIPY_", "JOBLIB_")
# Imported before any child is forked: TensorFlow, which every child needs first; scikit-learn's readers of
# the built-in datasets (digits, diabetes) and their train/test split, which cost each child another second; and
# the Model Optimization Toolkit, a third of a second of every fine-tuning child's (importing it runs no op).
PRELOADED = ("tensorflow", "sklearn.datasets", "sklearn.model_selection", "tensorflow_model_optimization")
_MAX_MESSAGE = 1 << 20


def _import_key(env):
    """The part of a child's environment that importing TensorFlow depends on (PYTHONPATH aside), as the child
    imports it (:func:`optlib._keras.import_environment`)."""
    from optlib._keras import import_environment

    full = import_environment(env)
    return tuple(sorted((k, v) for k, v in full.items() if k.startswith(IMPORT_SETTINGS) and k != "PYTHONPATH"))


class Forked:
    """A child forked by the starter, held like a ``subprocess.Popen``: ``pid``, :meth:`poll`, :meth:`wait`,
    :meth:`kill`, ``returncode`` (negative: the signal that ended it)."""

    def __init__(self, starter, pid):
        self.starter, self.pid, self.returncode = starter, pid, None
        self.args = ["optlib.engine.starter", "fork", str(pid)]
        self._ended = threading.Event()

    def _end(self, code):
        self.returncode = code
        self._ended.set()

    def poll(self):
        if self.returncode is None and not self.starter.alive:
            self._orphaned()
        return self.returncode

    def wait(self, timeout=None):
        import time

        until = None if timeout is None else time.monotonic() + timeout
        while not self._ended.wait(1.0 if until is None else max(0.0, min(1.0, until - time.monotonic()))):
            if self.poll() is not None:
                break
            if until is not None and time.monotonic() >= until:
                raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def kill(self):
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _orphaned(self):
        """The starter is gone, so no one will say how this child ended: its parent's death killed it
        (every child asks for that, :func:`optlib.engine.processes.die_with_parent`), or it is killed now."""
        self.kill()
        self._end(-signal.SIGKILL)


class _Starter:
    """This process's end of its socket to a starter: the user's shared one, or one of its own (``process``)."""

    def __init__(self, env, key, shared):
        import time

        self.created_at, self.ready_at = time.time(), None  # ready: TensorFlow imported, children can be forked
        self.process = None  # the starter process, where it is this process's own
        ours = _join_shared(env, key) if shared else None
        if ours is not None:
            self.pid = _peer(ours)[0]
        else:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            with theirs:
                self.process = subprocess.Popen(
                    [sys.executable, "-c", _RUN, __file__, str(theirs.fileno())], pass_fds=[theirs.fileno()],
                    env=env, stdin=subprocess.DEVNULL, cwd="/", start_new_session=True)
            self.pid = self.process.pid
        self.sock, self.alive, self.next_id, self.refused = ours, True, 0, False
        self.lock = threading.Lock()
        self.waiting, self.children, self.early = {}, {}, {}  # request id -> [Event, answer]; pid -> Forked
        self.ready = threading.Event()
        threading.Thread(target=self._read, name="optlib-starter", daemon=True).start()

    def spawn(self, module, args, env, cwd, fd, send):
        """Fork a child that runs ``python -m optlib.engine.child module FD *args``; return its :class:`Forked`,
        or None if this starter cannot (the caller then starts a fresh interpreter).

        The starter gets only a request number and the descriptors: what the child is to become (its module,
        arguments, environment and folder) goes to the child itself, through ``send`` (bytes to its socket),
        so no request ever sits in the starter's memory for later forks to find.
        """
        if not self.ready.wait(120) or not self.alive:
            return None
        with self.lock:
            self.next_id += 1
            asked, answer = self.next_id, [threading.Event(), None]
            self.waiting[asked] = answer
        try:
            socket.send_fds(self.sock, [json.dumps({"id": asked}).encode()], [fd, 1, 2])
        except OSError:
            return None  # this request failed; a starter that is gone says so by closing its socket
        if not answer[0].wait(60):
            self._gone()  # a starter that does not answer is not trusted with the next child either
            return None
        if not isinstance(answer[1], int):
            return None  # the fork failed (memory, the process limit): this child only
        with self.lock:
            forked = self.children[answer[1]] = Forked(self, answer[1])
            if answer[1] in self.early:  # it ended before we knew its pid
                forked._end(self.early.pop(answer[1]))
            elif not self.alive:  # the starter went meanwhile: no one will say how it ends
                forked._orphaned()
        request = json.dumps({"module": module, "args": list(args), "env": env, "cwd": cwd}).encode()
        try:
            send(len(request).to_bytes(8, "big") + request)
        except OSError:
            forked.kill()  # it waits for what it is to become: it would never start
        return forked

    def _read(self):
        try:
            while True:
                data = self.sock.recv(_MAX_MESSAGE)
                if not data:
                    break
                message = json.loads(data)
                with self.lock:
                    if "refused" in message:  # a shared starter that will not serve this process
                        self.refused = True
                    elif "ready" in message:
                        import time

                        self.ready_at = time.time()
                        self.ready.set()
                    elif "started" in message:
                        answer = self.waiting.pop(message["started"], None)
                        if answer is not None:
                            answer[1] = message.get("pid")
                            answer[0].set()
                    elif "ended" in message:
                        forked = self.children.pop(message["ended"], None)
                        if forked is None:
                            self.early[message["ended"]] = message["code"]
                        else:
                            forked._end(message["code"])
        except (OSError, ValueError):
            pass
        self._gone()

    def _gone(self):
        global _SHARING_REFUSED

        with self.lock:
            if self.refused:
                _SHARING_REFUSED = True  # this process keeps a starter of its own from now on
            self.alive = False
            self.ready.set()
            for answer in self.waiting.values():
                answer[0].set()
            children, self.children = list(self.children.values()), {}
        for forked in children:
            forked._orphaned()
        for end in (lambda: self.sock.shutdown(socket.SHUT_RDWR), self.sock.close):
            try:  # shut down first: our reading thread, blocked in recv, would keep a closed socket open
                end()  # a shared starter ends our children when it sees this, and goes on serving others
            except OSError:
                pass
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def close(self):
        self._gone()


# This file run by path, not ``-m optlib.engine.starter``: importing the optlib package would import the registry and
# its plugins, which each child must import itself, from its own PYTHONPATH.
_RUN = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('_optlib_starter', sys.argv[1]); "
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); module._serve(sys.argv[2])")
_STARTERS = {}  # (import settings, shared) -> _Starter of this process
_STARTERS_LOCK = threading.Lock()


def spawn(module, args, env, cwd, fd, send):
    """Start the engine child ``module`` from this process's starter; None where no starter serves (the caller
    then starts a fresh interpreter). ``env`` is the child's whole environment, ``cwd`` its working folder,
    ``fd`` its end of its socket (it gets it, and this process's standard output and error, as they are) and
    ``send`` writes bytes to our end (what it is to become goes that way, never through the starter)."""
    starter = _starter_for(env)
    return None if starter is None else starter.spawn(module, args, env, cwd, fd, send)


def prestart(env):
    """Start the starter that children with environment ``env`` would use, now rather than at the first child
    (its import of TensorFlow takes 3-4 s); nothing where none would serve."""
    _starter_for(env)


def _starter_for(env):
    from optlib._keras import import_environment
    from optlib.engine import sandbox

    if os.environ.get(ENV_SWITCH, "1") == "0" or os.environ.get(sandbox.ENV):
        return None  # switched off, or we are a sandboxed child ourselves: it starts fresh interpreters
    key, shared = _import_key(env), _may_share()
    with _STARTERS_LOCK:
        starter = _STARTERS.get((key, shared))
        if starter is None or not starter.alive:
            starter_env = import_environment({k: v for k, v in env.items()
                                              if k not in ("TMPDIR", "PYTHONPATH", sandbox.ENV)})
            try:  # its sys.path is the interpreter's own (no PYTHONPATH); each child adds its own PYTHONPATH
                starter = _STARTERS[(key, shared)] = _Starter(starter_env, key, shared)
            except OSError:
                return None
    return starter


# ------------------------------------------------------------------------------------ one starter for many processes

SHARED_ENV = "OPTLIB_SHARED_STARTER"  # "0": this process starts a starter of its own, which ends with it
IDLE_ENV = "OPTLIB_STARTER_IDLE_S"  # how long a shared starter with no process to serve waits before it ends
IDLE_S = 120.0


def _may_share():
    """Whether this process may use a starter shared with the user's other processes: not where switched off, and
    only where no sandboxed child can reach it. A shared starter answers on an abstract Unix socket; Landlock keeps
    a sandboxed child from reaching any outside its sandbox from ABI 6 on (Linux 6.12). On an older kernel each
    process keeps a starter of its own, reached only through a socket pair that no child holds."""
    from optlib.engine import sandbox

    if os.environ.get(SHARED_ENV, "1") == "0" or _SHARING_REFUSED or sandbox.status().abi < 6:
        return False
    try:  # a process under no_new_privs (a sandbox, some containers) would be refused: it keeps its own
        return _free_of_no_new_privs("self")
    except OSError:
        return False


def _free_of_no_new_privs(pid):
    """Whether process ``pid`` ("self": this one) runs without no_new_privs, which every sandboxed child has set.

    Raises:
        OSError: its status cannot be read (it is gone).
    """
    with open(f"/proc/{pid}/status") as status:
        return "NoNewPrivs:\t0" in status.read()


_SHARING_REFUSED = False  # a shared starter refused this process: it keeps a starter of its own from then on


def _address(key):
    """The name of the shared starter's abstract socket (without its leading NUL) for the import settings ``key``:
    one per user, interpreter and version of this file (a starter speaks the protocol of the file it came from)."""
    import hashlib

    with open(__file__, "rb") as code:
        version = hashlib.sha256(code.read()).hexdigest()
    digest = hashlib.sha256(json.dumps([sys.executable, os.path.realpath(__file__), version, key]).encode())
    return f"optlib-starter-{os.getuid()}-{digest.hexdigest()[:32]}"  # abstract: bound as "\0" + this


def _peer(sock):
    """(pid, uid, gid) of the process at the other end of a Unix socket, from the kernel."""
    import struct

    return struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))


def _unsandboxed_peer(sock):
    """Whether the process at the other end of ``sock`` is this user's and not under no_new_privs (every sandboxed
    child is). Read through a pidfd of that process (``SO_PEERPIDFD``, Linux 6.5) where there is one, which must
    still be alive after its status was read: its pid was not reused meanwhile."""
    pidfd = None
    try:
        pid, uid, _ = _peer(sock)
        if uid != os.getuid():
            return False
        try:
            pidfd = sock.getsockopt(socket.SOL_SOCKET, _SO_PEERPIDFD)
        except OSError:
            pidfd = None
        unsandboxed = _free_of_no_new_privs(pid)
        if unsandboxed and pidfd is not None:
            signal.pidfd_send_signal(pidfd, 0)  # raises if that process is gone (its pid could be another's)
        return unsandboxed
    except (OSError, ValueError, AttributeError):
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


_SO_PEERPIDFD = 77  # Linux's number (include/uapi/asm-generic/socket.h); not in Python 3.11's socket module


def _connect(address):
    """(our socket to the shared starter at ``address`` or None, whether to start one). None where none answers, and
    where the process holding the name is another user's or sandboxed (a sandboxed child can bind a name it cannot
    connect to: it would read what our children are to become): then we start one of our own, not a shared one."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect("\0" + address)
    except OSError:
        sock.close()
        return None, True
    if _unsandboxed_peer(sock):
        return sock, False
    sock.close()
    return None, False


def _join_shared(env, key):
    """Our socket to the user's shared starter for ``key``, started now (in a session of its own, not our child)
    where none runs; None where that fails (the caller then starts one of its own)."""
    import time

    address = _address(key)
    sock, launch = _connect(address)
    if not launch:
        return sock
    try:  # it binds the name, then leaves a process of its own to import TensorFlow and serve: we wait for that step
        launcher = subprocess.Popen([sys.executable, "-c", _RUN, __file__, address], env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    cwd="/", start_new_session=True)
        launcher.wait(30)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    until = time.monotonic() + 10
    while time.monotonic() < until:  # it listens a moment after its launcher has ended (or another process's
        sock, launch = _connect(address)  # starter, which won the name meanwhile, does)
        if not launch:
            return sock
        time.sleep(0.05)
    return None


def serving():
    """The pids of the starters this process's children are forked from (its own, or the user's shared one)."""
    with _STARTERS_LOCK:
        return [started.pid for started in _STARTERS.values() if started.alive]


def close_all():
    """End this process's starters (their children go with them)."""
    with _STARTERS_LOCK:
        starters = list(_STARTERS.values())
        _STARTERS.clear()
    for starter in starters:
        starter.close()


# ----------------------------------------------------------------------------------------- the starter itself


def _serve(where):
    """Import TensorFlow, then fork a child for each request of the processes this starter serves.

    ``where`` is the number of a socket whose other end our parent holds (a starter of its own, which ends when
    that socket closes), or an abstract socket name (a shared starter: it binds the name, leaves a process of its
    own to serve, welcomes every process of this user that is not sandboxed, and ends after :data:`IDLE_S` with
    no process to serve). A process that goes away takes its children with it.
    """
    import select
    import time

    site = sys.path[1:]  # ['', the interpreter's own...] (no PYTHONPATH): a child's is [its folder, its PYTHONPATH..., these]
    listener, clients = None, {}  # a process's socket -> the pids of its children
    if where.isdigit():
        clients[socket.socket(fileno=int(where))] = set()
    else:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            listener.bind("\0" + where)
        except OSError:
            os._exit(0)  # another starter holds the name already: it serves
        if os.fork() != 0:
            os._exit(0)  # the launcher ends here, the name taken; this fork imports and serves
        listener.listen(64)  # here, so that the kernel gives each process that connects this one's pid and user
    idle = float(os.environ.get(IDLE_ENV) or IDLE_S)
    _quiet_import()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    owners = {}  # child pid -> the socket of the process that asked for it
    for client in list(clients):
        _tell(client, {"ready": True}, clients)
    busy_at = time.monotonic()
    while clients or listener is not None:
        waiting = [*clients, wake_read, *([listener] if listener is not None else [])]
        readable, _, _ = select.select(waiting, [], [], 1.0)
        if wake_read in readable:
            os.read(wake_read, 4096)
        for pid, code in _reap(set(owners)):
            client = owners.pop(pid)
            if client in clients:
                clients[client].discard(pid)
                _tell(client, {"ended": pid, "code": code}, clients)
        if listener is not None and listener in readable:
            try:
                joined, _ = listener.accept()
            except OSError:
                joined = None
            # Only this user's processes that are not sandboxed: a sandboxed child must never get a child that is
            # not (Landlock keeps it from reaching the name in the first place).
            if joined is not None and _unsandboxed_peer(joined):
                joined.setblocking(False)  # a process that stops reading leaves: it never stalls the others
                clients[joined] = set()
                _tell(joined, {"ready": True}, clients)
            elif joined is not None:
                try:
                    joined.send(json.dumps({"refused": True}).encode())
                except OSError:
                    pass
                joined.close()
        for client in [c for c in readable if c in clients]:
            try:
                data, fds, _, _ = socket.recv_fds(client, _MAX_MESSAGE, 3)
            except OSError:
                data, fds = b"", []
            try:  # its number only (what the child becomes, it reads from its own socket), with three descriptors
                request = json.loads(data) if data else None
                if not isinstance(request, dict) or not isinstance(request.get("id"), int) or len(fds) != 3:
                    raise ValueError("not a request")
            except ValueError:  # gone, or a message no optlib process sends: that process alone is left
                for received in fds:
                    os.close(received)
                _leave(client, clients)
                continue
            try:
                pid = os.fork()
            except OSError:
                pid = None
            if pid == 0:
                os.close(wake_read)
                os.close(wake_write)
                for held in [*clients, *([listener] if listener is not None else [])]:
                    held.detach()  # closed in the child below, by number: no object of ours closes a number again
                _become_child(fds, site)  # never returns
            for received in fds:
                os.close(received)
            if pid is not None:
                clients[client].add(pid)
                owners[pid] = client
            _tell(client, {"started": request["id"], "pid": pid}, clients)
        if clients or owners:
            busy_at = time.monotonic()
        elif listener is not None and time.monotonic() - busy_at > idle:
            break  # nobody to serve for a while: the name is freed as this process ends
    for pid in owners:  # the processes that asked are gone: so are their children
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os._exit(0)


def _tell(client, message, clients):
    """Send a process one message; one that cannot take it any more has left (its children go)."""
    try:
        client.send(json.dumps(message).encode())
    except OSError:
        _leave(client, clients)


def _leave(client, clients):
    """A process has gone (its socket closed): kill its children, which it can no longer hear from."""
    for pid in clients.pop(client, ()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        client.close()
    except OSError:
        pass


def _quiet_import():
    """Import :data:`PRELOADED` (in the environment :func:`optlib._keras.import_environment` gave this process),
    TensorFlow's native start-up lines kept off the terminal (as :func:`optlib._quiet.native_stderr` does: this
    process imports nothing of optlib's).

    No garbage collection runs meanwhile (the import makes millions of objects and no garbage to speak of: the
    collections Python would run cost about 9% of it), and what was imported is frozen afterwards
    (``gc.freeze``, made for servers that fork): the children's collections never walk TensorFlow's objects
    again, nor write to their pages, which stay shared with the starter's."""
    import gc
    import importlib

    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(2)
    os.dup2(devnull, 2)
    gc.disable()
    try:
        for name in PRELOADED:
            importlib.import_module(name)
        # How each child names itself; set up here, while the process's environment is the one it started with.
        title = importlib.import_module("setproctitle")
        title.setproctitle(f"{sys.executable} {__file__} (the starter: forks optlib's children)")
    finally:
        gc.freeze()
        gc.enable()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _die_with_the_starter():
    """Killed if the starter dies, from the first instant (the child's module asks again for its own parent)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _reap(children):
    """(pid, status) of every child that has ended, status as ``Popen.returncode`` gives it."""
    ended = []
    for pid in list(children):
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 0
        if done:
            children.discard(pid)
            ended.append((pid, -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.waitstatus_to_exitcode(status)))
    return ended


def _read_exactly(fd, count):
    data = b""
    while len(data) < count:
        part = os.read(fd, count - len(data))
        if not part:
            raise EOFError("the parent closed the socket before it said what this child is to be")
        data += part
    return data


def _become_child(fds, site):
    """In the fork: read from its own socket what the parent asked for, become
    ``python -m optlib.engine.child MODULE FD ARGS`` accordingly, and run it."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _die_with_the_starter()
        os.setsid()  # a session of its own, as Popen(start_new_session=True) gives
        child_socket, out, err = fds
        os.dup2(out, 1)
        os.dup2(err, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        keep = sorted({0, 1, 2, child_socket})
        for low, high in zip(keep, keep[1:] + [max(65536, os.sysconf("SC_OPEN_MAX"))]):
            os.closerange(low + 1, high)  # the starter's sockets above all: a child must not ask it for more
        request = json.loads(_read_exactly(child_socket, int.from_bytes(_read_exactly(child_socket, 8), "big")))
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ[PARENT_ENV] = str(os.getppid())
        import tempfile

        tempfile.tempdir = None  # read TMPDIR again: the child's own scratch folder
        entries = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        import site as python_site

        sys.path[:] = [request["cwd"], *entries, *site]
        python_site.removeduppaths()  # absolute, each once, first place kept: as Python's start makes sys.path
        sys.modules.pop("_optlib_starter", None)  # the child imports optlib itself, after entering its sandbox
        import importlib
        import runpy

        importlib.invalidate_caches()
        sys.argv = ["-m", request["module"], str(child_socket), *request["args"]]
        import setproctitle  # what ps shows: the command line a fresh child would have had

        setproctitle.setproctitle(" ".join([sys.executable, "-m", "optlib.engine.child", *sys.argv[1:]]))
        runpy.run_module("optlib.engine.child", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as leaving:
        code = leaving.code if isinstance(leaving.code, int) else (0 if leaving.code is None else 1)
        if leaving.code is not None and not isinstance(leaving.code, int):
            print(leaving.code, file=sys.stderr)  # sys.exit("message"), as an interpreter prints it
    except BaseException:  # as an interpreter would: the traceback on stderr, status 1
        import traceback

        traceback.print_exc()
    finally:
        try:
            import atexit
            import threading as _threading

            _threading._shutdown()  # non-daemon threads finish, and exit functions run, as at an interpreter's end
            atexit._run_exitfuncs()
        except BaseException:
            pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os._exit(code)


