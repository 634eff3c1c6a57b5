"""Benchmark section: where a sweep's time went, per scheme and summed per phase, for the default sweep and for
MobileNetV2 (untrained, digits as data) with float32 and all eight LiteRT Quantizer schemes in one cold sweep.

    .venv/bin/python -m bench.phases [--repeats 1]      # the MobileNetV2 sweep alone, its table printed

Every figure is the row's own ``phases_s`` (measured by the job, :mod:`optlib.engine.job`); a worker's start
and its loading of the model and the data are counted once per worker in the sums.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LQ_ALL = ("float32,lq_dynamic_int8,lq_int8,lq_int16x8,lq_weight_int8,lq_weight_int4,lq_dynamic_int4,"
          "lq_blockwise_int4,lq_int8_selective")
TARGET_S = {"mobilenet_v2_lq": 40.0, "default": 30.0}  # the targets on this machine kind (2 cores)


def sweep(home, model, selection, *extra):
    """(wall seconds, result rows) of one CLI sweep in the data folder ``home``."""
    env = {**os.environ, "OPTLIB_HOME": str(home), "KERAS_HOME": str(Path(home) / "keras")}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "optlib", "sweep", "--model", model, "--data", "digits",
                           "--schemes", selection, *extra, "--json"], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-2000:])
    return wall, json.loads(done.stdout)["results"]


def bench_mobilenet_lq(repeats, summary):
    """MobileNetV2 float32 + the eight LiteRT Quantizer schemes, each time from an empty data folder."""
    walls, rows = [], None
    for _ in range(repeats):
        home = Path(tempfile.mkdtemp(prefix="bench-lq-all-"))
        load = round(os.getloadavg()[0], 2)
        wall, rows = sweep(home, "mobilenet_v2", LQ_ALL, "--runs", "20")
        walls.append(wall)
    return {"wall_s": summary(walls), "load_average_at_start": load, **went(rows)}


def went(rows):
    """Per scheme {phase: s}, statuses and accuracies, and the sum per phase (:func:`where_the_time_went`)."""
    from optlib.analysis.timing import where_the_time_went

    return {"where_the_time_went_s": where_the_time_went(rows),
            "per_scheme": {r["scheme"]: {"status": r["status"], "total_s": r.get("total_s"),
                                         "convert_s": r.get("convert_s"), "train_s": r.get("train_s"),
                                         "accuracy": r.get("accuracy"), "phases_s": r.get("phases_s") or {},
                                         "error": r.get("error")} for r in rows}}


def markdown_lines(title, section, target_s=None):
    """A table: one line per scheme with its phases, then the sum per phase."""
    from optlib.analysis.timing import ONCE_PER_WORKER, PHASES

    wall = section["wall_s"]
    met = "" if target_s is None else f" (target ≤ {target_s:.0f} s: {'met' if wall['median'] <= target_s else 'not met'})"
    lines = ["", f"**{title}**: {wall['median']:.1f} s wall, median of {wall['runs']} (spread {wall['spread']:.1f} s)"
             f"{met}; where the time went (s):", ""]
    used = [p for p in PHASES if p in section["where_the_time_went_s"]]
    lines.append("| scheme | top-1 | " + " | ".join(PHASES[p] for p in used) + " |")
    lines.append("|---" * (len(used) + 2) + "|")
    for scheme, row in section["per_scheme"].items():
        if row["status"] != "ok":
            lines.append(f"| {scheme} | {row['status']}: {(row['error'] or '')[:60]} |" + " |" * len(used))
            continue
        phases = row["phases_s"]
        cells = [f"{phases[p]:.2f}" if p in phases else "" for p in used]
        accuracy = f"{row['accuracy']:.4f}" if isinstance(row.get("accuracy"), float) else "—"
        lines.append(f"| {scheme} | {accuracy} | " + " | ".join(cells) + " |")
    total = section["where_the_time_went_s"]
    lines.append("| **sum** (a worker's start and loading once per worker) | | "
                 + " | ".join(f"**{total[p]:.1f}**" for p in used) + " |")
    lines.append("")
    lines.append(f"(once per worker: {', '.join(PHASES[p] for p in ONCE_PER_WORKER)}; the jobs of two workers "
                 "overlap, so the sums exceed the wall time.)")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    from bench.run import cold_processes, summary

    cold_processes()

    with tempfile.TemporaryDirectory(prefix="optlib-bench-") as scratch:
        tempfile.tempdir = scratch
        result = bench_mobilenet_lq(args.repeats, summary)
    print(json.dumps(result, indent=1))
    print("\n".join(markdown_lines("mobilenet_v2, float32 + eight LiteRT Quantizer schemes, cold", result,
                                   TARGET_S["mobilenet_v2_lq"])))


if __name__ == "__main__":
    main()
