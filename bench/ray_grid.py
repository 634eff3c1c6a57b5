"""Benchmark section: a grid sweep through the local executor and through Ray on this machine.

The grid is the five post-training schemes, pruning at four sparsities and clustering at three
cluster counts (12 jobs) on digits_cnn, each from an empty store (the trained model cached). Both
go through the CLI, so Ray's wall time includes starting Ray on this machine and its workers
loading TensorFlow. From the per-job times measured in the Ray run it estimates how the jobs would
divide over N nodes like this one (longest job first onto the least loaded CPU).
"""

import heapq
import shutil
import tempfile
from pathlib import Path

GRID = ["--schemes", "post-training,prune,cluster", "--param", "prune.sparsity=0.3,0.5,0.7,0.9",
        "--param", "cluster.clusters=8,16,32"]


def spread_over(durations, slots):
    """Wall time of jobs of these durations on ``slots`` CPUs, longest first onto the least busy one."""
    loads = [0.0] * slots
    for duration in sorted(durations, reverse=True):
        heapq.heapreplace(loads, loads[0] + duration)
    return max(loads)


def bench_ray_grid(cli_sweep, trained_zoo, summary, repeats, nodes=(1, 2, 4, 8), cpus_per_node=2):
    """{"local_s", "ray_s", "ratio", "jobs", "ok", "job_s", "over_nodes"} for the grid sweep."""
    walls = {"local": [], "ray": []}
    jobs = None
    for _ in range(repeats):
        for executor in ("local", "ray"):
            home = Path(tempfile.mkdtemp(prefix=f"bench-{executor}-"))
            shutil.copytree(trained_zoo(), home / "zoo")
            wall, result = cli_sweep(home, "--model", "digits_cnn", "--data", "digits", *GRID,
                                     "--executor", executor)
            walls[executor].append(wall)
            rows = result["results"]
            if executor == "ray":
                jobs = [r for r in rows if r["status"] == "ok"]
            shutil.rmtree(home, ignore_errors=True)
    local, ray = summary(walls["local"]), summary(walls["ray"])
    job_s = [r["finished_at"] - r["started_at"] for r in jobs]
    here = spread_over(job_s, cpus_per_node)
    return {"local_s": local, "ray_s": ray, "ratio": ray["median"] / local["median"], "jobs": len(rows),
            "ok": len(jobs), "job_s": {"sum": sum(job_s), "longest": max(job_s)},
            "startup_s": ray["median"] - here,
            "over_nodes": {n: spread_over(job_s, n * cpus_per_node) for n in nodes}, "cpus_per_node": cpus_per_node}


def markdown_lines(g):
    lines = [f"| grid sweep (12 jobs), local executor | {g['local_s']['median']:.1f} s | {g['local_s']['spread']:.1f} s | | |",
             f"| grid sweep (12 jobs), Ray on this machine | {g['ray_s']['median']:.1f} s | {g['ray_s']['spread']:.1f} s | | |",
             f"| Ray / local (overhead ratio) | {g['ratio']:.2f} | | | |",
             f"| jobs ok on Ray | {g['ok']}/{g['jobs']} | | | |",
             f"| per-job time on Ray: sum / longest | {g['job_s']['sum']:.1f} / {g['job_s']['longest']:.1f} s | | | |"]
    for n, wall in g["over_nodes"].items():
        lines.append(f"| jobs divided over {n} node{'s' if int(n) > 1 else ''} of {g['cpus_per_node']} CPUs "
                     f"(+ {g['startup_s']:.1f} s start-up measured here) | {wall:.1f} s | | | |")
    return lines
