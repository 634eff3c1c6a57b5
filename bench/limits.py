"""Resource limits, measured: hostile files refused, memory against dataset size, and a room of students.

    .venv/bin/python bench/limits.py [--skip hostile,memory,load]   # writes bench/out/limits.{json,md}

(``bench/run.py`` runs the same sections as part of the whole benchmark.)

1. hostile: each file of tests/hostile.py (a 4 MB ``.npz`` declaring 1 GB, a PNG declaring 30,000 x
   30,000 pixels, a ``.keras`` and an ``.h5`` whose weights declare 3.6 GB) given to
   ``python -m optlib sweep``: its exit status, the seconds until it is refused, and the peak resident
   memory of the CLI and its worker;
2. memory: a float32 sweep of digits_cnn on ``.npz`` datasets of three sizes: the worker's peak resident
   memory above that on a tiny dataset, as a multiple of the dataset's own size (raw uint8) and of its
   size as the model sees it (float32);
3. load: twenty page sweeps (``pages._jobs.SweepJob``) and three CLI sweeps started at once
   (bench/load.py): wall time, peak memory of all their processes and of the machine, and the
   background load every latency recorded.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
OUT = ROOT / "bench" / "out"
PY = sys.executable
PEAK = ("import resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(done.returncode, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.stderr.write(done.stderr)\n")


def _home():
    import shutil

    from bench.run import trained_zoo

    home = Path(tempfile.mkdtemp(prefix="bench-limits-"))
    shutil.copytree(trained_zoo(), home / "zoo")
    return home


def _measured_cli(home, *args):
    """Run ``python -m optlib sweep ARGS``; return (exit status, seconds, peak RSS MB of it and its worker, stderr)."""
    done = subprocess.run([PY, "-c", PEAK, PY, "-m", "optlib", "sweep", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "OPTLIB_HOME": str(home)}, check=False)
    code, seconds, peak_kb = done.stdout.split()
    return int(code), float(seconds), int(peak_kb) / 1000, done.stderr.strip()


def bench_hostile():
    import hostile

    home = _home()
    folder = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    cases = {
        "npz declaring 1 GB": ("digits_cnn", hostile.compressible_npz(folder / "big.npz")),
        "image declaring 30,000 x 30,000": ("digits_cnn", hostile.image_folder_with(
            folder / "images", hostile.huge_png(folder / "big.png"))),
        ".keras declaring 3.6 GB of weights": (hostile.big_keras(folder / "big.keras"), "digits"),
        ".h5 declaring 3.6 GB of weights": (hostile.big_h5(folder / "big.h5"), "digits"),
    }
    result = {}
    for name, (model, data) in cases.items():
        code, seconds, peak, stderr = _measured_cli(home, "--model", str(model), "--data", str(data),
                                                    "--schemes", "float32", "--store", str(home / "s.sqlite"))
        size = Path(data if model == "digits_cnn" else model)
        on_disk = sum(f.stat().st_size for f in size.rglob("*")) if size.is_dir() else size.stat().st_size
        result[name] = {"exit": code, "seconds": round(seconds, 2), "peak_rss_mb": round(peak),
                        "file_bytes": on_disk, "message": stderr.splitlines()[-1] if stderr else ""}
    return result


def bench_memory(sizes=(20_000, 40_000, 80_000), baseline=500):
    """Worker peak RSS of a float32 sweep against the dataset's size (uint8 28x28 images)."""
    import numpy as np

    home = _home()
    folder = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    rng = np.random.default_rng(0)
    peaks = {}
    for count in (baseline, *sizes):
        path = folder / f"digits-{count}.npz"
        np.savez(path, x_test=rng.integers(0, 256, (count, 28, 28), dtype=np.uint8),
                 y_test=rng.integers(0, 10, count, dtype=np.uint8))
        done = subprocess.run([PY, "-m", "optlib", "sweep", "--model", "digits_cnn", "--data", str(path), "--schemes",
                               "float32", "--runs", "20", "--json", "--store", str(home / f"{count}.sqlite")],
                              cwd=ROOT, capture_output=True, text=True, env={**os.environ, "OPTLIB_HOME": str(home)},
                              check=False)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip())
        peaks[count] = json.loads(done.stdout)["results"][0]["peak_rss_mb"]
        path.unlink()
    rows = []
    for count in sizes:
        raw_mb, float_mb = count * 784 / 1e6, count * 784 * 4 / 1e6
        above = peaks[count] - peaks[baseline]
        rows.append({"samples": count, "raw_mb": round(raw_mb, 1), "float32_mb": round(float_mb, 1),
                     "peak_rss_mb": peaks[count], "above_baseline_mb": round(above, 1),
                     "multiple_of_raw": round(above / raw_mb, 2), "multiple_of_float32": round(above / float_mb, 2)})
    return {"baseline_samples": baseline, "baseline_peak_rss_mb": peaks[baseline], "sizes": rows}


def bench_load(sessions=20, cli=3):
    from bench.load import run_load
    from optlib.engine.store import Store, result_row

    home = _home()
    os.environ["OPTLIB_HOME"] = str(home)  # the page sweeps run in this process
    store = home / "load.sqlite"
    load = run_load("digits_cnn", "digits", store, sessions=sessions, cli=cli)
    rows = [result_row(row) for row in Store(store).rows()]
    background = [r["latency_ms"]["background_cpu"] for r in rows if r["status"] == "ok"]
    loads = [r["latency_ms"]["load_1m"] for r in rows if r["status"] == "ok"]
    finished = sum(1 for job in load["page_jobs"] if job.result and all(
        row["status"] == "ok" for row in job.result["results"])) + sum(1 for code, _, _ in load["cli"] if code == 0)
    return {"sweeps": sessions + cli, "finished_ok": finished, "runs_stored": len(rows),
            "wall_s": round(load["wall_s"], 1), "peak_tree_mb": round(load["peak_tree_mb"]),
            "machine_used_delta_mb": round(load["machine_used_delta_mb"]),
            "background_cpu": {"median": statistics.median(background), "max": max(background)} if background else None,
            "load_1m": {"median": statistics.median(loads), "max": max(loads)} if loads else None,
            "max_sweeps": os.environ.get("OPTLIB_MAX_SWEEPS") or "default"}


def run_all(skip=()):
    result = {}
    for name, section in (("hostile", bench_hostile), ("memory", bench_memory), ("load", bench_load)):
        if name not in skip:
            print(f"limits: {name} ...", file=sys.stderr)
            result[name] = section()
    return result


def markdown(result):
    lines = []
    for name, case in result.get("hostile", {}).items():
        lines.append(f"| {name} ({case['file_bytes'] / 1e6:.1f} MB file): refused | exit {case['exit']} in "
                     f"{case['seconds']:.1f} s, peak {case['peak_rss_mb']} MB | | < 10 s, < 2 GB | "
                     f"{'yes' if case['exit'] == 2 and case['seconds'] < 10 and case['peak_rss_mb'] < 2000 else 'no'} |")
    memory = result.get("memory")
    if memory:
        for row in memory["sizes"]:
            lines.append(f"| worker peak RSS, {row['samples']:,} samples ({row['raw_mb']} MB uint8, "
                         f"{row['float32_mb']} MB float32) | {row['peak_rss_mb']:.0f} MB (+{row['above_baseline_mb']:.0f} "
                         f"MB over {memory['baseline_samples']} samples: {row['multiple_of_raw']:.1f}x raw, "
                         f"{row['multiple_of_float32']:.2f}x float32) | | | |")
    load = result.get("load")
    if load:
        lines.append(f"| load: {load['sweeps']} sweeps at once (20 page, 3 CLI), {load['finished_ok']} finished ok, "
                     f"{load['runs_stored']} runs stored | {load['wall_s']:.0f} s wall, peak {load['peak_tree_mb']} MB "
                     f"(machine +{load['machine_used_delta_mb']} MB) | | all finish | "
                     f"{'yes' if load['finished_ok'] == load['sweeps'] else 'no'} |")
        if load["background_cpu"]:
            lines.append(f"| load: background CPU / load average while timing | "
                         f"{100 * load['background_cpu']['median']:.0f}% (max {100 * load['background_cpu']['max']:.0f}%)"
                         f" / {load['load_1m']['median']:.2f} (max {load['load_1m']['max']:.2f}) | | | |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", default="", help="comma-separated: hostile, memory, load")
    args = parser.parse_args()
    from bench.run import machine

    result = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              **run_all(set(args.skip.split(",")))}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "limits.json").write_text(json.dumps(result, indent=1))
    table = "\n".join(["| figure | measured | spread | target | met |", "|---|---|---|---|---|", *markdown(result)])
    (OUT / "limits.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
