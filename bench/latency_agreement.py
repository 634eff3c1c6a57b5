"""Compare optlib's latency figure with LiteRT's own benchmark tool on the same files.

    .venv/bin/python bench/latency_agreement.py FILE.tflite [...] [--threads 1] [--runs 50] [--rounds 3]

For each file, alternates optlib's measurement and
``ai_edge_litert.tools.benchmark_litert_model`` (same threads, runs and
warm-up) ``rounds`` times, and prints the medians and their ratio.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optlib.engine import measure  # noqa: E402


def litert_median(path, threads, runs, warmup):
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        subprocess.run([sys.executable, "-m", "ai_edge_litert.tools.benchmark_litert_model", f"--model={path}",
                        f"--num_runs={runs}", f"--warmup_runs={warmup}", f"--num_threads={threads}",
                        f"--result_json={out}"], check=True, capture_output=True)
        return json.loads(out.read_text())["latency"]["median_ms"]


def compare(path, threads=1, runs=50, warmup=5, rounds=3):
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(measure.latency(path, None, threads, runs, warmup)["median"])
        theirs.append(litert_median(path, threads, runs, warmup))
    return {"file": Path(path).name, "optlib_ms": statistics.median(ours), "litert_ms": statistics.median(theirs),
            "ratio": statistics.median(ours) / statistics.median(theirs),
            "optlib_spread": (max(ours) - min(ours)) / statistics.median(ours),
            "litert_spread": (max(theirs) - min(theirs)) / statistics.median(theirs),
            "optlib_values": ours, "litert_values": theirs, "rounds": rounds}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for file in args.files:
        r = compare(file, args.threads, args.runs, rounds=args.rounds)
        print(f"{r['file']:<50} optlib {r['optlib_ms']:8.2f} ms  LiteRT {r['litert_ms']:8.2f} ms  "
              f"ratio {r['ratio']:.3f}  spread: optlib {100 * r['optlib_spread']:.1f}%, "
              f"LiteRT {100 * r['litert_spread']:.1f}%")
