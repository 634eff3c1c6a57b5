"""The sandbox every engine child process runs in: Linux Landlock, applied by the child to itself.

A model file is data from a stranger, and Keras can run code while it reads
one (:mod:`optlib.inputs.allowlist` is the first wall). This is the second:
each child that loads, converts, quantizes, trains or measures a model
(the sweep's workers, page work, the TFLite Micro helper; Ray tasks start
one too) restricts itself before it reads anything, with Landlock, the
kernel's unprivileged sandbox (Linux 5.13+; network rules 6.7+):

- it may read and execute the system's and Python's files and optlib's code;
- it may read only the inputs its parent names (the model file, the data);
- it may write only its own scratch folder (``TMPDIR``), plus any folder its
  parent names (the float32 cache folder of this model, the zoo cache for
  the project's own models);
- it may neither bind nor connect a TCP port, nor signal or reach (abstract
  sockets) processes outside its sandbox; where the system allows
  unprivileged user namespaces, it also gets a network namespace of its own
  with no interface up, so UDP and every other protocol go nowhere.

The store, the rest of the data folder, other sessions' uploads and the
network stay out of reach, even for a bypass of the allowlist that no one
knows yet. What a child sends back is plain data (:mod:`optlib.engine.wire`).

Landlock needs no privileges and no extra package: the three system calls are
made here with ctypes. Where the kernel has no Landlock, :func:`status` says
so; the app and the CLI then refuse untrusted model files unless the operator
sets ``OPTLIB_ALLOW_UNSANDBOXED=1`` (:func:`require_for_untrusted`).
"""

import ctypes
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from optlib.errors import InputError

ENV = "OPTLIB_SANDBOX"  # the policy a child applies to itself, as JSON (set by optlib.engine.processes)

# System calls (the same numbers on every architecture Linux added them to at once).
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWUSER, _CLONE_NEWNET = 0x10000000, 0x40000000
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

# Access rights (include/uapi/linux/landlock.h).
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

READ = EXECUTE | READ_FILE | READ_DIR
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # the only rights a rule on a file can take


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


@dataclass(frozen=True)
class Policy:
    """What one child may touch beyond the system's and Python's files (read only).

    Attributes:
        read: files and folders it may read (its inputs).
        write: folders it may read and write (its scratch folder first).
        network: it may use the network (only the child that downloads a tfds dataset the operator allows,
            :func:`optlib.engine.datasets.prepare`; it reads and writes no model).
    """

    read: tuple = ()
    write: tuple = ()
    network: bool = False

    def to_env(self):
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, text):
        values = json.loads(text)
        return cls(tuple(values.get("read", ())), tuple(values.get("write", ())), values.get("network") is True)


@dataclass(frozen=True)
class Status:
    """Whether this machine can sandbox the engine's children, and how well."""

    abi: int  # Landlock's ABI version, 0 when there is none
    reason: str = ""  # why there is none
    covers: list = field(default_factory=list)  # what it restricts, in words

    @property
    def available(self):
        return self.abi > 0


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def status():
    """Landlock's ABI on this kernel (0 with the reason when there is none), without restricting anything."""
    if platform.system() != "Linux":
        return Status(0, f"Landlock is a Linux feature; this is {platform.system()}")
    if os.environ.get("OPTLIB_SANDBOX_OFF") == "1":  # tests that prove the allowlist alone refuses
        return Status(0, "switched off with OPTLIB_SANDBOX_OFF=1")
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    if abi < 0:
        error = ctypes.get_errno()
        why = {38: "the kernel has no Landlock (Linux 5.13 or newer needed)",
               95: "Landlock is built in but turned off (add landlock to the lsm= boot parameter)"}
        return Status(0, why.get(error, f"Landlock answered {os.strerror(error)}"))
    covers = ["files: read only the system, Python and the named inputs; write only the scratch folder"]
    if abi >= 4:
        covers.append("network: no TCP bind or connect (and, where user namespaces are allowed, no network at "
                      "all: a network namespace of its own)")
    if abi >= 6:
        covers.append("signals and abstract Unix sockets: only within the sandbox")
    return Status(int(abi), "", covers)


def require_for_untrusted(trusted=False):
    """Refuse untrusted model files where no sandbox is available, unless the operator allows it.

    Raises:
        InputError: no Landlock here and ``OPTLIB_ALLOW_UNSANDBOXED`` is not set.
    """
    found = status()
    if found.available or trusted or _allowed_unsandboxed():
        return
    raise InputError(f"Model files from users are refused on this server: there is no sandbox ({found.reason}). "
                     "Use a built-in model, or ask the operator to set OPTLIB_ALLOW_UNSANDBOXED=1 to load them "
                     "with the allowlist alone.")


def _allowed_unsandboxed():
    return os.environ.get("OPTLIB_ALLOW_UNSANDBOXED", "").strip().lower() in ("1", "true", "yes", "on")


def code_folder():
    """optlib's own folder (the package's code)."""
    return str(Path(__file__).resolve().parents[1])


def system_reads():
    """Folders every child reads: the system's, Python's, the virtual environment's, optlib's code and the
    scheme plugins the operator named (``OPTLIB_PLUGINS``)."""
    found = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys", "/opt",
             "/dev/urandom", "/dev/random", "/dev/zero",
             sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
             code_folder(), *_plugin_folders()]
    return [p for p in dict.fromkeys(os.path.realpath(p) for p in found if p) if os.path.exists(p)]


def importable(pythonpath):
    """The folders of ``pythonpath`` a child may read to import from: all but one that holds the data folder
    (the repository's root, say) or lies in it. optlib itself comes through a link (:mod:`processes`)."""
    from optlib import paths

    data, repo = os.path.realpath(paths.data_dir()), os.path.realpath(paths.REPO_ROOT)
    found = []
    for entry in pythonpath:
        real = os.path.realpath(entry) if entry else ""
        if real and os.path.isdir(real) and real != repo and not _within(data, real) and not _within(real, data):
            found.append(real)
    return found


# What a child's environment keeps of its parent's: settings, never the server's secrets (tokens, keys).
ENVIRONMENT_PREFIXES = ("OPTLIB_", "TF_", "KERAS_", "TFDS_", "OMP_", "MKL_", "OPENBLAS_", "XLA_", "LC_", "PYTHON")
ENVIRONMENT_NAMES = {"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "USER", "LOGNAME", "CUDA_VISIBLE_DEVICES"}


def environment():
    """The parent's environment as a child gets it: the settings it needs (:data:`ENVIRONMENT_PREFIXES`)."""
    return {k: v for k, v in os.environ.items() if k in ENVIRONMENT_NAMES or k.startswith(ENVIRONMENT_PREFIXES)}


def _within(path, folder):
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _plugin_folders():
    """The folders of the plugin modules in ``$OPTLIB_PLUGINS`` (found, not imported)."""
    import importlib.util

    folders = []
    for name in filter(None, (m.strip() for m in os.environ.get("OPTLIB_PLUGINS", "").split(","))):
        try:
            spec = importlib.util.find_spec(name.split(".")[0])
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.origin and os.path.isfile(spec.origin):
            folders.append(os.path.dirname(spec.origin))
    return folders


def apply(policy):
    """Restrict this process (and every process it starts) to ``policy``; for good.

    Raises:
        OSError: the kernel refused a step (the child must then stop, not go on unrestricted).
    """
    abi = status().abi
    if abi <= 0:
        return False
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    if not policy.network:
        _no_network(libc)
    handled = EXECUTE | WRITE_FILE | READ_FILE | READ_DIR | REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR \
        | MAKE_REG | MAKE_SOCK | MAKE_FIFO | MAKE_BLOCK | MAKE_SYM
    if abi >= 2:
        handled |= REFER
    if abi >= 3:
        handled |= TRUNCATE
    if abi >= 5:
        handled |= IOCTL_DEV
    attr = _RulesetAttr(handled, NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 and not policy.network else 0,
                        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0)
    size = ctypes.sizeof(ctypes.c_uint64) * (3 if abi >= 6 else 2 if abi >= 4 else 1)
    ruleset = libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for path in system_reads() + list(policy.read):
            _allow(libc, ruleset, path, READ & handled)
        _allow(libc, ruleset, "/dev/null", (READ_FILE | WRITE_FILE) & handled)
        for path in policy.write:
            _allow(libc, ruleset, path, handled)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return True


def _no_network(libc):
    """Best effort, before Landlock: a user and network namespace of its own, whose only interface is a
    loopback that is down. Landlock stops TCP; this stops UDP and the rest, and hides the host's abstract
    sockets. Where the system forbids unprivileged user namespaces it is skipped (Landlock still holds)."""
    uid, gid = os.getuid(), os.getgid()
    try:  # a child of a sandboxed process is in its namespace already, and may not write /proc: nothing to do
        with open("/proc/self/uid_map", "r+"):
            pass
    except OSError:
        return False
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
        return False
    try:  # the same user inside as outside, so its files stay its own
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as handle:
                handle.write(text)
    except OSError as problem:
        raise OSError(problem.errno, f"could not map the user into its namespace ({problem})") from None
    return True


def _allow(libc, ruleset, path, access):
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # not on this system
    try:
        if not os.path.isdir(path):
            access &= FILE_RIGHTS
        rule = _PathBeneathAttr(access, fd)
        if libc.syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule),
                        ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule failed on {path}")
    finally:
        os.close(fd)


def enter_from_env():
    """In a child: apply the policy its parent put in ``OPTLIB_SANDBOX`` (nothing when there is none).

    Raises:
        OSError: the sandbox could not be applied (the child must stop).
    """
    text = os.environ.get(ENV)
    if text:
        apply(Policy.from_env(text))


def reach(model=None, data=None, read=(), write=()):
    """(read, write): what a child working on ``model`` and ``data`` (resolved sources) may touch.

    It reads the model file (or, for a zoo model, its ImageNet weights) and the data it names, and writes
    the float32 cache folder of that model; a child working on one of the project's own zoo models also
    reads and writes the zoo cache (they are trained once and kept); a child working on a file never does,
    so it cannot spoil a built-in model for the next person. Nothing else of the data folder.
    """
    from optlib import paths
    from optlib.engine import float32_cache

    reads, writes = [paths.keras_home(), *read], [*write]
    if model is not None:
        writes.append(float32_cache.folder_for(model.fingerprint))
        if model.kind == "zoo":  # the project's own: it may train and keep the demos (and only it)
            writes.append(paths.zoo_dir())
            reads.append(model.weights or paths.keras_home())
        else:
            reads.append(model.path)
    if data is not None:
        if data.path:
            reads.append(data.path)
        if data.kind == "tfds":
            from optlib.inputs.tfds_folder import tfds_data_dir

            reads.append(tfds_data_dir())
    return [str(p) for p in reads if p], [str(p) for p in writes if p]
