"""The benchmark suite: measures this machine and writes bench/out/latest.{json,md}.

    .venv/bin/python bench/run.py [--repeats 3] [--skip sweep,search,mobilenet,app]

1. wall time of the default sweep (digits_cnn on digits, all schemes), cold and warm, where its time went per
   scheme and phase (bench/phases.py), the
   share of the machine other processes used while its latencies were timed (background_cpu,
   the training worker paused), and the wall time of an accuracy-targeted search (4 trials,
   empty store); MobileNetV2 with float32 and all eight LiteRT Quantizer schemes in one cold sweep, and
   where its time went (bench/phases.py);
2. per-scheme conversion time for mobilenet_v2;
3. evaluation throughput against the bare interpreter's invoke rate (engine overhead);
4. optlib's latency against LiteRT's benchmark tool on the same files, and run-to-run spread;
5. peak memory (RSS) of a mobilenet_v2 post-training sweep;
6. time from starting the app to its first page served, and to interactive in the browser; the
   Model & data page's first facts of the built-in model and data, read in child processes (as the page
   does) and, for comparison, in one process that imports TensorFlow itself;
7. resource limits (bench/limits.py, also runnable alone): hostile files refused, a worker's peak memory
   against dataset size, twenty page sweeps and three CLI sweeps at once;
8. the two backends on mobilenet_v2: build time per scheme through TFLiteConverter and LiteRT
   Quantizer, their ratio, and each PTQ sweep's wall time (bench/backends.py);
9. a grid sweep (12 jobs) through the local executor and through Ray on this machine, and how
   its jobs would divide over N nodes (bench/ray_grid.py);
10. a large model file's opening (ResNet50's 103 MB ``.keras``): its declared weights read, tf_keras's
    loading, and the whole loader (bench/model_load.py).

Each figure: median of repeated runs, spread (max - min), and the machine it ran on.
Targets are printed beside the figures; this script asserts nothing.
"""

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
PY = sys.executable

from bench import backends, phases  # after the repository is on the path


def summary(values):
    return {"median": statistics.median(values), "spread": max(values) - min(values),
            "runs": len(values), "values": [round(v, 4) for v in values]}


def machine():
    import psutil

    return {"host": socket.gethostname(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()]}


def cold_processes():
    """Every process the benchmark starts imports TensorFlow in a starter of its own, as the first process on a
    machine does, rather than joining the shared starter an earlier measurement left (optlib/engine/starter.py):
    "cold" stays cold. Figures taken with the shared starter running say so (``shared=True``)."""
    os.environ.setdefault("OPTLIB_SHARED_STARTER", "0")


def cli_sweep(home, *args, shared=False):
    env = {**os.environ, "OPTLIB_HOME": str(home), **({"OPTLIB_SHARED_STARTER": "1"} if shared else {})}
    start = time.perf_counter()
    done = subprocess.run([PY, "-m", "optlib", "sweep", *args, "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip())
    return wall, json.loads(done.stdout)


def trained_zoo():
    """A zoo folder with the trained digits_cnn, as after the app's first start (trained once per run)."""
    if not hasattr(trained_zoo, "folder"):
        home = Path(tempfile.mkdtemp(prefix="bench-zoo-"))
        cli_sweep(home, "--model", "digits_cnn", "--data", "digits", "--schemes", "float32")  # trains, caches
        trained_zoo.folder = home / "zoo"
    return trained_zoo.folder


def bench_default_sweep(repeats):
    """Cold: empty store (the trained digits_cnn is cached, as after a first start). Warm: all stored."""
    cold, warm, rows, background = [], [], None, []
    for _ in range(repeats):
        home = Path(tempfile.mkdtemp(prefix="bench-home-"))
        shutil.copytree(trained_zoo(), home / "zoo")
        wall, result = cli_sweep(home, "--model", "digits_cnn", "--data", "digits", "--schemes", "all")
        cold.append(wall)
        rows = result["results"]
        # Timed while the other worker (fine-tuning) is paused: what is left is the rest of the machine.
        background += [r["latency_ms"]["background_cpu"] for r in rows
                       if r["status"] == "ok" and (r.get("latency_ms") or {}).get("background_cpu") is not None]
        for _ in range(repeats):
            warm.append(cli_sweep(home, "--model", "digits_cnn", "--data", "digits", "--schemes", "all")[0])
    # An empty store, but the user's shared starter running already (an app, or a CLI run in the last two
    # minutes): the workers are forked at once, with no import of TensorFlow first.
    joined = []
    for _ in range(repeats):
        home = Path(tempfile.mkdtemp(prefix="bench-home-"))
        shutil.copytree(trained_zoo(), home / "zoo")
        cli_sweep(home, "--model", "digits_cnn", "--data", "digits", "--schemes", "float32", shared=True)
        joined.append(cli_sweep(home, "--model", "digits_cnn", "--data", "digits", "--schemes", "all",
                                "--recompute", shared=True)[0])
    ok = sum(r["status"] == "ok" for r in rows)
    from optlib.analysis.timing import where_the_time_went

    return {"cold_s": summary(cold), "warm_s": summary(warm), "starter_running_s": summary(joined),
            "schemes_ok": ok, "schemes": len(rows),
            "where_the_time_went_s": where_the_time_went(rows),
            "per_scheme_s": {r["scheme"]: r.get("total_s") for r in rows}, **phases.went(rows),
            "background_cpu": {**summary(background), "max": max(background)} if background else None}


def bench_search(repeats, trials=4):
    """Wall time of `python -m optlib search` with an empty store (the trained digits_cnn cached)."""
    walls = []
    for _ in range(repeats):
        home = Path(tempfile.mkdtemp(prefix="bench-search-"))
        shutil.copytree(trained_zoo(), home / "zoo")
        start = time.perf_counter()
        done = subprocess.run([PY, "-m", "optlib", "search", "--model", "digits_cnn", "--data", "digits",
                               "--trials", str(trials), "--json"], cwd=ROOT, env={**os.environ, "OPTLIB_HOME": str(home)},
                              capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip())
    return {"wall_s": summary(walls), "trials": trials, "met": json.loads(done.stdout)["met"]}


def bench_mobilenet(repeats):
    """Conversion time per post-training scheme and peak RSS of the whole sweep (parent + worker)."""
    times, peaks, artifacts = {}, [], {}
    for _ in range(repeats):
        home = Path(tempfile.mkdtemp(prefix="bench-mnv2-"))
        env = {**os.environ, "OPTLIB_HOME": str(home), "KERAS_HOME": str(home / "keras")}
        out = home / "result.json"
        # /usr/bin/time -v gives the peak RSS of the parent; the worker reports its own.
        start = time.perf_counter()
        done = subprocess.run([PY, "-m", "optlib", "sweep", "--model", "mobilenet_v2", "--data", "digits",
                               "--schemes", "post-training", "--json", "--runs", "20"],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        out.write_text(done.stdout)
        result = json.loads(done.stdout)
        for row in result["results"]:
            times.setdefault(row["scheme"], []).append(row.get("build_s"))
            if row["status"] == "ok":
                artifacts[row["scheme"]] = row["tflite_path"]
        worker_peak = max(r.get("peak_rss_mb") or 0 for r in result["results"])
        peaks.append(worker_peak)
    return {"conversion_s": {s: summary([v for v in vals if v is not None]) if any(v is not None for v in vals)
                             else {"median": None, "note": "failed"} for s, vals in times.items()},
            "errors": {r["scheme"]: r["error"] for r in result["results"] if r["status"] != "ok"},
            "peak_rss_mb": summary(peaks), "last_wall_s": wall}, artifacts


def bench_eval_overhead(path, repeats, images=256):
    """Images/s through optlib's evaluation against a bare set_tensor/invoke/get_tensor loop."""
    import numpy as np

    from optlib.engine import measure

    it = measure.interpreter(path)
    detail = it.get_input_details()[0]
    x = np.random.default_rng(0).uniform(-1, 1, (images, *detail["shape"][1:])).astype(np.float32)
    engine, bare = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        measure.predict(path, x)
        engine.append(images / (time.perf_counter() - start))
        it = measure.interpreter(path)
        out = it.get_output_details()[0]
        start = time.perf_counter()
        for image in x:
            it.set_tensor(detail["index"], measure.quantize_input(image[None], detail))
            it.invoke()
            it.get_tensor(out["index"])
        bare.append(images / (time.perf_counter() - start))
    return {"engine_images_per_s": summary(engine), "bare_invoke_images_per_s": summary(bare),
            "ratio": statistics.median(engine) / statistics.median(bare), "images": images,
            "model": Path(path).name}


def bench_latency(artifacts, repeats):
    from bench.latency_agreement import compare

    rows = {}
    for scheme, path in artifacts.items():
        if scheme in ("float32", "int8", "float16"):
            rows[scheme] = compare(path, threads=1, runs=50, rounds=max(5, repeats))  # slow stretches come and go
    return rows


def bench_app(repeats):
    """Seconds from launching `streamlit run` to the first page served (HTTP 200), and to interactive."""
    served, interactive = [], []
    for _ in range(repeats):
        port = _free_port()
        home = tempfile.mkdtemp(prefix="bench-app-")
        start = time.perf_counter()
        server = subprocess.Popen([PY, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                   "--server.port", str(port), "--browser.gatherUsageStats", "false"],
                                  cwd=ROOT, env={**os.environ, "OPTLIB_HOME": home},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://localhost:{port}/"
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=1) as response:
                        if response.status == 200:
                            break
                except OSError:
                    time.sleep(0.05)
            served.append(time.perf_counter() - start)
            interactive.append(_browser_interactive(url) + served[-1])
        finally:
            server.terminate()
            server.wait(10)
    return {"first_page_served_s": summary(served), "interactive_s": summary(interactive)}


PAGE_FACTS = """
import json, sys, time
from optlib.engine import isolated
from optlib.inputs import facts
how = sys.argv[1]
start = time.perf_counter()
if how == "isolated":  # as the page does: both with one start of TensorFlow, in a child
    isolated.call(facts.model_and_data_facts, "digits_cnn", False, "digits")
else:
    facts.model_facts("digits_cnn", False)
    facts.data_facts("digits_cnn", False, "digits")
print(json.dumps({"s": time.perf_counter() - start, "tensorflow_here": "tensorflow" in sys.modules}))
"""


def bench_page_facts(repeats):
    """Seconds for Model & data's first view of the built-in model and data: the facts read in isolated
    child processes (as the page does), against the same in a server that imports TensorFlow itself."""
    home = Path(tempfile.mkdtemp(prefix="bench-page-"))
    shutil.copytree(trained_zoo(), home / "zoo")
    env = {**os.environ, "OPTLIB_HOME": str(home), "PYTHONPATH": str(ROOT)}
    figures = {"isolated": [], "in_process": []}
    for _ in range(repeats):
        for how, times in figures.items():
            done = subprocess.run([PY, "-c", PAGE_FACTS, how], cwd=ROOT, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(done.stderr.strip()[-500:])
            times.append(json.loads(done.stdout.strip().splitlines()[-1])["s"])
    return {how: summary(times) for how, times in figures.items()}


def _browser_interactive(url):
    """Seconds from opening the page in Chromium until Streamlit's app has rendered its first element."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("[data-testid='stSidebar'], [data-testid='stMain'] h1", timeout=60000)
        seconds = time.perf_counter() - start
        browser.close()
        return seconds


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TARGETS = {
    "default sweep, cold": ("< 60 s", lambda r: r["default_sweep"]["cold_s"]["median"] < 60),
    "default sweep, warm": ("< 2 s", lambda r: r["default_sweep"]["warm_s"]["median"] < 2),
    "background CPU while timing": ("max < 25%", lambda r: r["default_sweep"]["background_cpu"]["max"] < 0.25),
    "evaluation vs bare invoke": (">= 80%", lambda r: r["eval_overhead"]["ratio"] >= 0.8),
    "latency vs LiteRT tool": ("within 10%", lambda r: all(abs(v["ratio"] - 1) <= 0.10
                                                           for v in r["latency"].values())),
    "latency run-to-run spread": ("< 5%", lambda r: all(v["optlib_spread"] < 0.05 for v in r["latency"].values())),
    "mobilenet_v2 PTQ peak RSS": ("< 4 GiB", lambda r: r["mobilenet_v2"]["peak_rss_mb"]["median"] < 4096),
    "app first page served": ("< 3 s", lambda r: r["app"]["first_page_served_s"]["median"] < 3),
}


def markdown(result):
    r = result
    lines = [f"Machine: {r['machine']['cores']} cores, {r['machine']['memory_gb']} GiB, {r['machine']['cpu']}, "
             f"Python {r['machine']['python']} ({r['machine']['host']}), {r['date']}; "
             f"load average at start {r['machine']['load_average_at_start'][0]}; "
             f"median of {r['repeats']} runs (spread = max - min).", "",
             "| figure | median | spread | target | met |", "|---|---|---|---|---|"]
    lines_after = []

    def row(name, fig, unit, fmt=".2f"):
        target, check = TARGETS.get(name, ("", None))
        try:
            met = "yes" if check and check(r) else ("no" if check else "")
        except (KeyError, TypeError):
            met = "n/a"
        lines.append(f"| {name} | {fig['median']:{fmt}} {unit} | {fig['spread']:{fmt}} {unit} | {target} | {met} |")

    if "default_sweep" in r:
        d = r["default_sweep"]
        row("default sweep, cold", d["cold_s"], "s")
        row("default sweep, warm", d["warm_s"], "s")
        if "starter_running_s" in d:
            row("default sweep, empty store, the shared starter running", d["starter_running_s"], "s")
        lines.append(f"| schemes ok in the default sweep | {d['schemes_ok']}/{d['schemes']} | | 11/11 | "
                     f"{'yes' if d['schemes_ok'] == 11 else 'no'} |")
        went = d.get("where_the_time_went_s")
        if went:
            from optlib.analysis.timing import PHASES

            lines.append("| default sweep, where the time went (summed over its jobs, the last cold run) | "
                         + ", ".join(f"{PHASES.get(k, k)} {v:.1f} s" for k, v in went.items()) + " | | | |")
            lines_after.extend(phases.markdown_lines("default sweep, cold (the last run)", {**d, "wall_s": d["cold_s"]},
                                                     phases.TARGET_S["default"]))
        b = d.get("background_cpu")
        if b:
            target, check = TARGETS["background CPU while timing"]
            lines.append(f"| background CPU while timing (default sweep, {b['runs']} latencies) | "
                         f"{100 * b['median']:.1f}% (max {100 * b['max']:.1f}%) | {100 * b['spread']:.1f}% | "
                         f"{target} | {'yes' if check(r) else 'no'} |")
    if "search" in r:
        row(f"search, {r['search']['trials']} trials, cold", r["search"]["wall_s"], "s")
    if "eval_overhead" in r:
        e = r["eval_overhead"]
        row("evaluation vs bare invoke", {"median": 100 * e["ratio"], "spread": 0}, "%", ".0f")
        lines.append(f"| (engine / bare, images/s) | {e['engine_images_per_s']['median']:.0f} / "
                     f"{e['bare_invoke_images_per_s']['median']:.0f} | | | |")
    for scheme, v in r.get("latency", {}).items():
        lines.append(f"| mobilenet_v2 {scheme} latency: optlib / LiteRT tool | {v['optlib_ms']:.2f} / "
                     f"{v['litert_ms']:.2f} ms (ratio {v['ratio']:.3f}) | {100 * v['optlib_spread']:.1f}% "
                     f"(LiteRT tool: {100 * v.get('litert_spread', float('nan')):.1f}%) | "
                     f"within 10%, spread < 5% | "
                     f"{'yes' if abs(v['ratio'] - 1) <= 0.1 and v['optlib_spread'] < 0.05 else 'no'} |")
    if "mobilenet_v2" in r:
        m = r["mobilenet_v2"]
        for scheme, fig in m["conversion_s"].items():
            if fig.get("median") is not None:
                lines.append(f"| mobilenet_v2 {scheme} conversion | {fig['median']:.1f} s | {fig['spread']:.1f} s | | |")
            else:
                lines.append(f"| mobilenet_v2 {scheme} conversion | failed: {m['errors'].get(scheme, '')[:60]} | | | |")
        row("mobilenet_v2 PTQ peak RSS", m["peak_rss_mb"], "MB", ".0f")
    if "ray_grid" in r:
        from bench.ray_grid import markdown_lines

        lines += markdown_lines(r["ray_grid"])
    if "model_load" in r:
        from bench.model_load import markdown_lines as model_load_lines

        lines += model_load_lines(r["model_load"])
    if "sandbox" in r:
        from bench.sandbox import markdown_lines

        lines += markdown_lines(r["sandbox"])
    if "app" in r:
        row("app first page served", r["app"]["first_page_served_s"], "s")
        row("app interactive in Chromium", r["app"]["interactive_s"], "s")
    if "page_facts" in r:
        row("Model & data facts, first view: in child processes (the page)", r["page_facts"]["isolated"], "s")
        row("Model & data facts, first view: in the server (before)", r["page_facts"]["in_process"], "s")
    if "mobilenet_lq" in r:
        lines_after.extend(phases.markdown_lines("mobilenet_v2, float32 + eight LiteRT Quantizer schemes, one cold "
                                                 "sweep", r["mobilenet_lq"], phases.TARGET_S["mobilenet_v2_lq"]))
    if "limits" in r:
        from bench import limits

        lines += limits.markdown(r["limits"])
    if "backends" in r:
        lines += backends.markdown_lines(r["backends"])
    return "\n".join(lines + lines_after)  # the where-the-time-went tables after the figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma-separated: sweep, lq, search, mobilenet, model_load, sandbox, app, "
                        "backends, limits (or its sections: hostile, memory, load), ray")
    args = parser.parse_args()
    cold_processes()
    with tempfile.TemporaryDirectory(prefix="optlib-bench-") as scratch:
        tempfile.tempdir = scratch  # every folder a section makes (stores, models) goes here and is removed
        run_sections(args)


def run_sections(args):
    skip = set(args.skip.split(","))
    result = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "repeats": args.repeats}
    if "sweep" not in skip:
        print("default sweep ...", file=sys.stderr)
        result["default_sweep"] = bench_default_sweep(args.repeats)
    if "lq" not in skip:
        print("mobilenet_v2, float32 + eight LiteRT Quantizer schemes ...", file=sys.stderr)
        result["mobilenet_lq"] = phases.bench_mobilenet_lq(args.repeats, summary)
    if "search" not in skip:
        print("search ...", file=sys.stderr)
        result["search"] = bench_search(args.repeats)
    if "mobilenet" not in skip:
        print("mobilenet_v2 ...", file=sys.stderr)
        result["mobilenet_v2"], artifacts = bench_mobilenet(1)
        print("evaluation overhead and latency ...", file=sys.stderr)
        result["eval_overhead"] = bench_eval_overhead(artifacts["float32"], args.repeats)
        result["latency"] = bench_latency(artifacts, args.repeats)
    if "model_load" not in skip:
        print("a large model file's loading ...", file=sys.stderr)
        from bench.model_load import bench_model_load

        result["model_load"] = bench_model_load(summary, args.repeats)
    if "sandbox" not in skip:
        print("the sandbox's cost ...", file=sys.stderr)
        from bench.sandbox import bench_sandbox

        result["sandbox"] = bench_sandbox(cli_sweep, trained_zoo, summary, args.repeats)
    if "ray" not in skip:
        print("grid sweep, local and Ray ...", file=sys.stderr)
        from bench.ray_grid import bench_ray_grid

        result["ray_grid"] = bench_ray_grid(cli_sweep, trained_zoo, summary, args.repeats)
    if "app" not in skip:
        print("app start ...", file=sys.stderr)
        result["app"] = bench_app(args.repeats)
        print("Model & data facts, isolated and in-process ...", file=sys.stderr)
        result["page_facts"] = bench_page_facts(args.repeats)
    if "limits" not in skip:
        from bench import limits

        result["limits"] = limits.run_all(skip)  # its sections: hostile, memory, load
    if "backends" not in skip:
        print("both backends on mobilenet_v2 ...", file=sys.stderr)
        result["backends"] = backends.bench_backends()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "latest.json").write_text(json.dumps(result, indent=1))
    table = markdown(result)
    (OUT / "latest.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
