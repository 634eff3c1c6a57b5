"""What an app server started by the tests has loaded (read from the process, by its port)."""

from urllib.parse import urlparse

import psutil


def server_process(url):
    """The ``streamlit run`` process serving ``url``."""
    port = str(urlparse(url).port)
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "streamlit" in " ".join(cmdline) and port in cmdline:
            return process
    raise LookupError(f"no app server on port {port}")


def tensorflow_loaded(url):
    """True once TensorFlow's native library is mapped into the server's memory."""
    with open(f"/proc/{server_process(url).pid}/maps") as maps:
        return "pywrap_tensorflow" in maps.read()
