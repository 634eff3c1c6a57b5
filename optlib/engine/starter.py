"""A process that has imported TensorFlow once, and starts the engine's children as copies of itself.

Every child (a sweep's worker, page work) used to be a fresh interpreter that spent its first seconds
importing TensorFlow: 3-4 s of a core each time, on every sweep and every model a page describes. The
starter pays that once per parent process: it imports TensorFlow (and scikit-learn's dataset readers,
:data:`PRELOADED`) and nothing of anyone's, then waits; each child is a fork of it, which then becomes
exactly what ``python -m optlib.engine.child MODULE FD ...`` would be (its own session, working folder,
environment, standard streams, import path) and enters its sandbox before it reads anything
(:mod:`optlib.engine.child`). The fork happens in the starter, a process of one thread that has run no
TensorFlow op, never in the parent (whose threads may hold locks).

:func:`spawn` is what :func:`optlib.engine.processes.start` calls; it gives back a :class:`Forked`, which a
:class:`~optlib.engine.processes.Child` holds like a ``Popen``. Where no starter can serve (a sandboxed
process starting a helper, ``OPTLIB_PRELOAD=0``, a starter that failed), it returns None and the caller
starts a fresh interpreter as before.

The parent and the starter talk over a socket pair of their own: the parent sends a request (JSON) with the
child's socket and standard streams attached (SCM_RIGHTS); the starter answers with the child's pid, and
later with its exit status (the starter is its parent, so only it can reap it). A starter whose parent goes
away sees its socket close, kills its children and ends.
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
# Imported before any child is forked: TensorFlow, which every child needs first, and scikit-learn's readers of
# the built-in datasets (digits, diabetes) and their train/test split, which cost each child another second.
PRELOADED = ("tensorflow", "sklearn.datasets", "sklearn.model_selection")
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
    """The parent's end of one starter process."""

    def __init__(self, env):
        import time

        self.created_at, self.ready_at = time.time(), None  # ready: TensorFlow imported, children can be forked
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            # This file run by path, not ``-m optlib.engine.starter``: importing the optlib package would import the
            # registry and its plugins, which each child must import itself, from its own PYTHONPATH.
            self.process = subprocess.Popen(
                [sys.executable, "-c", _RUN, __file__, str(theirs.fileno())], pass_fds=[theirs.fileno()],
                env=env, stdin=subprocess.DEVNULL, cwd="/", start_new_session=True)
        self.sock, self.alive, self.next_id = ours, True, 0
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
                    if "ready" in message:
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
        with self.lock:
            self.alive = False
            self.ready.set()
            for answer in self.waiting.values():
                answer[0].set()
            children, self.children = list(self.children.values()), {}
        for forked in children:
            forked._orphaned()
        try:
            self.sock.close()
        except OSError:
            pass
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def close(self):
        self._gone()


_RUN = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('_optlib_starter', sys.argv[1]); "
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); module._serve(int(sys.argv[2]))")
_STARTERS = {}  # import settings -> _Starter of this process
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
    key = _import_key(env)
    with _STARTERS_LOCK:
        starter = _STARTERS.get(key)
        if starter is None or not starter.alive:
            starter_env = import_environment({k: v for k, v in env.items()
                                              if k not in ("TMPDIR", "PYTHONPATH", sandbox.ENV)})
            try:  # its sys.path is the interpreter's own (no PYTHONPATH); each child adds its own PYTHONPATH
                starter = _STARTERS[key] = _Starter(starter_env)
            except OSError:
                return None
    return starter


def close_all():
    """End this process's starters (their children go with them)."""
    with _STARTERS_LOCK:
        starters = list(_STARTERS.values())
        _STARTERS.clear()
    for starter in starters:
        starter.close()


# ----------------------------------------------------------------------------------------- the starter itself


def _serve(fd):
    """Import TensorFlow, then fork a child for each request until the parent's socket closes."""
    import select

    control = socket.socket(fileno=fd)
    site = sys.path[1:]  # ['', the interpreter's own...] (no PYTHONPATH): a child's is [its folder, its PYTHONPATH..., these]
    _quiet_import()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children = set()
    control.send(json.dumps({"ready": True}).encode())
    try:
        while True:
            readable, _, _ = select.select([control, wake_read], [], [], 1.0)
            if wake_read in readable:
                os.read(wake_read, 4096)
            for pid, code in _reap(children):
                control.send(json.dumps({"ended": pid, "code": code}).encode())
            if control not in readable:
                continue
            data, fds, _, _ = socket.recv_fds(control, _MAX_MESSAGE, 3)
            if not data:
                break
            request = json.loads(data)  # its number only: what the child becomes, it reads from its own socket
            try:
                pid = os.fork()
            except OSError:
                pid = None
            if pid == 0:
                os.close(wake_read)
                os.close(wake_write)
                _become_child(fds, control.fileno(), site)  # never returns
            for received in fds:
                os.close(received)
            if pid is not None:
                children.add(pid)
            control.send(json.dumps({"started": request["id"], "pid": pid}).encode())
    except OSError:
        pass
    for pid in children:  # the parent is gone: so are its children
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os._exit(0)


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


def _become_child(fds, control, site):
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
            os.closerange(low + 1, high)  # the starter's socket above all: a child must not ask it for more
        del control
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


