"""Benchmark section: the two backends on MobileNetV2 (untrained, digits as data).

Three sweeps, each from an empty data folder except the last:

- converter: float32 and the converter scheme of each pair (dynamic, int8, int16x8; TFLiteConverter converts
  from Keras for each);
- LiteRT Quantizer: float32 and each pair's LiteRT Quantizer scheme (lq_dynamic_int8, lq_int8, lq_int16x8: one
  float32 conversion, then recipes);
- the other LiteRT Quantizer schemes in the second folder (the float32 conversion is served from its cache).

The pairs are the registry's counterparts (``counterparts()``) without the converter's own variants, as the
Compare page pairs them (:func:`optlib.analysis.backends.pairs`).

Reported: each sweep's wall time; each scheme's build time (the job's wall time) and, for LiteRT
Quantizer, calibration + quantization alone; the ratio converter / LiteRT Quantizer for each pair
of the same quantization; every scheme's status with its reason when it failed.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optlib.analysis.backends import pairs  # noqa: E402  (no TensorFlow: the registry and pandas)
from optlib.engine import schemes  # noqa: E402

PAIRS = tuple(pairs())  # (converter scheme, LiteRT Quantizer scheme) of the same quantization
CONVERTER = ",".join(["float32", *(converter for converter, _ in PAIRS)])
LQ = ",".join(["float32", *(lq for _, lq in PAIRS)])
LQ_REST = ",".join(s.name for s in schemes.list_schemes(backend="litert-quantizer", variants=True)
                   if s.name not in {lq for _, lq in PAIRS})


def _sweep(home, selection, runs):
    env = {**os.environ, "OPTLIB_HOME": str(home), "KERAS_HOME": str(home / "keras")}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "optlib", "sweep", "--model", "mobilenet_v2", "--data", "digits",
                           "--schemes", selection, "--runs", str(runs), "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip())
    return wall, json.loads(done.stdout)["results"]


def bench_backends(runs=20):
    """Run the three sweeps once; return wall times, per-scheme rows and the pair ratios."""
    converter_home = Path(tempfile.mkdtemp(prefix="bench-conv-"))
    lq_home = Path(tempfile.mkdtemp(prefix="bench-lq-"))
    walls, rows = {}, {}
    for label, home, selection in (("converter", converter_home, CONVERTER), ("litert-quantizer", lq_home, LQ),
                                   ("litert-quantizer, other schemes", lq_home, LQ_REST)):
        walls[label], results = _sweep(home, selection, runs)
        for row in results:
            key = row["scheme"] if label == "converter" or row["scheme"] != "float32" else "float32 (for lq)"
            rows[key] = {"status": row["status"], "error": row.get("error"), "build_s": row.get("build_s"),
                         "quantize_s": _sum(row.get("calibrate_s"), row.get("quantize_s")),
                         "float32_convert_s": row.get("float32_convert_s"), "size_bytes": row.get("size_bytes"),
                         "latency_ms": (row.get("latency_ms") or {}).get("median")}
    ratios = {}
    for converter, lq in PAIRS:
        a, b = rows.get(converter, {}), rows.get(lq, {})
        if a.get("status") == "ok" and b.get("status") == "ok" and b.get("build_s"):
            ratios[f"{converter} / {lq}"] = round(a["build_s"] / b["build_s"], 2)
    return {"wall_s": {k: round(v, 1) for k, v in walls.items()}, "schemes": rows, "build_ratio": ratios,
            "load_average_at_end": round(os.getloadavg()[0], 2)}


def _sum(*values):
    return None if any(v is None for v in values) else round(sum(values), 3)


def markdown_lines(b):
    """Rows for the benchmark table."""
    lines = [f"| mobilenet_v2 PTQ sweep wall time, {label} | {wall:.1f} s | | | |" for label, wall in b["wall_s"].items()]
    for scheme, row in b["schemes"].items():
        if row["status"] != "ok":
            lines.append(f"| mobilenet_v2 {scheme} build | {row['status']}: {(row['error'] or '')[:70]} | | | |")
            continue
        alone = f" (calibrate + quantize {row['quantize_s']:.2f} s)" if row["quantize_s"] is not None else ""
        lines.append(f"| mobilenet_v2 {scheme} build | {row['build_s']:.2f} s{alone} | | | |")
    for pair, ratio in b["build_ratio"].items():
        lines.append(f"| mobilenet_v2 build time ratio {pair} (converter / LiteRT Quantizer) | {ratio:.2f}× | | | |")
    return lines


if __name__ == "__main__":
    result = bench_backends()
    print(json.dumps(result, indent=1))
    print("\n".join(markdown_lines(result)))
