"""Silence native (C++) log lines that TensorFlow and LiteRT write straight to fd 2.

Python's ``warnings``/``logging`` settings cannot reach them: the absl
start-up notice, "Created TensorFlow Lite XNNPACK delegate" and the
converter's "fully_quantize: ..." lines. They would break the CLI's promise
of one clear line on stderr. Python exceptions are unaffected.
"""

import contextlib
import os
import sys
import threading

_lock = threading.Lock()
_depth = 0
_saved = None


@contextlib.contextmanager
def native_stderr():
    """Send fd 2 to /dev/null for the duration (re-entrant, thread-safe)."""
    global _depth, _saved
    if os.environ.get("OPTLIB_NATIVE_LOGS"):
        yield
        return
    with _lock:
        if _depth == 0:
            sys.stderr.flush()
            _saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                os.dup2(_saved, 2)
                os.close(_saved)
