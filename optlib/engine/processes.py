"""How a child process of the engine ended, and how it ends with its parent (workers, the TFLM helper)."""

import signal


def how_it_ended(code):
    """Say how a worker process ended, from its exit status (a negative status is the signal that ended it)."""
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
        why = (" (the kernel's out-of-memory killer ends processes this way when memory runs out)"
               if -code == signal.SIGKILL else "")
        return f"was killed by {name}{why}"
    return f"exited with status {code} before it finished"


def die_with_parent():
    """Ask Linux to kill this process when its parent dies: a killed sweep leaves no worker finishing a job
    that the next sweep would run again, and a killed worker no TFLM helper."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: it stops at its next request instead (its pipe is closed)
