"""Which machine a figure was measured on (figures from different machines do not compare), and the
machine's one turn to time a latency."""

import functools
import os
import platform
import socket


@functools.cache
def cpu_model():
    """The CPU's model name (from /proc/cpuinfo on Linux), or the platform's processor name."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed_on():
    """{"host", "cpu_model", "cpus"} of this machine, as every latency figure records them."""
    return {"host": socket.gethostname(), "cpu_model": cpu_model(), "cpus": os.cpu_count()}


def default_threads():
    """Threads for work that is not a latency figure: the job's CPU share where an executor set one
    (``OPTLIB_CPUS``: a Ray task's), else every core."""
    return int(os.environ.get("OPTLIB_CPUS") or 0) or os.cpu_count()


# One latency at a time on the machine.

LATENCY_TURN = "\0optlib-latency-timing"  # an abstract Unix socket name: one holder per machine (network namespace)


def try_latency_turn():
    """The machine's one turn to time a latency, or None while another process holds it.

    Sweeps of every data folder (two apps, two CLIs with different ``OPTLIB_HOME``) take turns here: the
    turn is a socket bound to one abstract name, which only one process can hold and which the kernel frees
    when its holder ends, however it ends. Close the socket to give the turn back.
    """
    holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        holder.bind(LATENCY_TURN)
    except OSError:  # EADDRINUSE: another process is timing
        holder.close()
        return None
    return holder
