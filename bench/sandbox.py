"""What the sandbox costs (issue: untrusted model files): the default sweep and a page-work child, each run
with the sandbox and without it (``OPTLIB_SANDBOX_OFF=1``), pair by pair in one run; and the allowlist's
check of a large configuration (MobileNetV2's), which runs before every file model loads."""

import os
import shutil
import tempfile
import time
from pathlib import Path


def _timed_sweep(cli_sweep, trained_zoo, sandboxed):
    home = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    shutil.copytree(trained_zoo(), home / "zoo")
    before = os.environ.pop("OPTLIB_SANDBOX_OFF", None)
    if not sandboxed:
        os.environ["OPTLIB_SANDBOX_OFF"] = "1"
    try:
        wall, result = cli_sweep(home, "--model", "digits_cnn", "--data", "digits", "--schemes", "all")
    finally:
        os.environ.pop("OPTLIB_SANDBOX_OFF", None)
        if before is not None:
            os.environ["OPTLIB_SANDBOX_OFF"] = before
    return wall, sum(r["status"] == "ok" for r in result["results"])


def _child_start(sandboxed):
    from optlib.engine import isolated

    os.environ.pop("OPTLIB_SANDBOX_OFF", None)
    if not sandboxed:
        os.environ["OPTLIB_SANDBOX_OFF"] = "1"
    try:
        started = time.perf_counter()
        isolated.call(os.getpid, what="An empty page work")
        return time.perf_counter() - started
    finally:
        os.environ.pop("OPTLIB_SANDBOX_OFF", None)


def _allowlist_check():
    """Seconds to check tf_keras MobileNetV2's saved configuration (155 layers), without loading it."""
    import subprocess
    import sys

    folder = Path(tempfile.mkdtemp(prefix="bench-allowlist-"))
    path = folder / "mobilenet_v2.keras"
    code = ("from optlib._keras import keras; keras().applications.MobileNetV2(weights=None).save("
            f"{str(path)!r}, save_format='keras_v3')")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    from optlib.inputs import allowlist

    started = time.perf_counter()
    allowlist.check(path, "keras")
    return time.perf_counter() - started


def bench_sandbox(cli_sweep, trained_zoo, summary, repeats):
    """Pairs (sandboxed, not) of the default sweep, cold, and of an empty page-work child."""
    sweeps = {"sandboxed": [], "unsandboxed": []}
    ok = {}
    for _ in range(repeats):
        for name, sandboxed in (("sandboxed", True), ("unsandboxed", False)):
            wall, ok[name] = _timed_sweep(cli_sweep, trained_zoo, sandboxed)
            sweeps[name].append(wall)
    children = {"sandboxed": [], "unsandboxed": []}
    for _ in range(max(3, repeats)):
        for name, sandboxed in (("sandboxed", True), ("unsandboxed", False)):
            children[name].append(_child_start(sandboxed))
    return {"default_sweep_s": {k: summary(v) for k, v in sweeps.items()}, "schemes_ok": ok,
            "child_s": {k: summary(v) for k, v in children.items()},
            "allowlist_mobilenet_v2_s": round(_allowlist_check(), 4)}


def markdown_lines(r):
    s, c = r["default_sweep_s"], r["child_s"]
    return [f"| default sweep, cold, in the sandbox / without it | {s['sandboxed']['median']:.2f} / "
            f"{s['unsandboxed']['median']:.2f} s | {s['sandboxed']['spread']:.2f} / {s['unsandboxed']['spread']:.2f} s "
            f"| | schemes ok {r['schemes_ok'].get('sandboxed')} / {r['schemes_ok'].get('unsandboxed')} |",
            f"| an empty page-work child, in the sandbox / without it | {c['sandboxed']['median']:.3f} / "
            f"{c['unsandboxed']['median']:.3f} s | {c['sandboxed']['spread']:.3f} / "
            f"{c['unsandboxed']['spread']:.3f} s | | |",
            f"| the allowlist's check of MobileNetV2's config | {r['allowlist_mobilenet_v2_s'] * 1000:.1f} ms | | | |"]
