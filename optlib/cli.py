"""The command line: ``python -m optlib sweep|schemes|results ...``.

Exit status 0 when the command ran (a sweep runs even if some schemes fail;
their rows say why); 2 with one plain line on stderr when the model, the data
or the arguments cannot be used.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from optlib.engine import schemes
from optlib.errors import InputError
from optlib.units import format_bytes


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise InputError(f"{message} (see: python -m optlib {self.prog.split()[-1]} --help)")


def _params(items):
    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--param needs KEY=VALUE (e.g. prune.sparsity=0.6), got '{item}'.")
        overrides[key.strip()] = value.strip()
    return overrides


def build_parser():
    parser = _Parser(prog="python -m optlib", description="Run and compare TFLite model optimizations.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sweep = sub.add_parser("sweep", help="run schemes on a model and dataset, measure and store them")
    sweep.add_argument("--model", required=True, help="zoo name or path (.keras, .h5, .tflite, SavedModel folder, "
                                                      ".zip)")
    sweep.add_argument("--data", required=True, help="digits, a .npz, a folder of class folders, tfds:NAME[:SPLIT]")
    sweep.add_argument("--schemes", default="all", help="comma-separated names, a family, or all")
    sweep.add_argument("--store", help="SQLite store path (default: data/results.sqlite)")
    sweep.add_argument("--threads", type=int, help="interpreter threads for latency (default 1)")
    sweep.add_argument("--runs", type=int, help="at least this many timed invokes for latency, over at least 0.3 s "
                       "(default 50)")
    sweep.add_argument("--epochs", type=int, help="fine-tuning epochs for training-time schemes (default 2)")
    sweep.add_argument("--param", action="append", metavar="KEY=VALUE",
                       help="a scheme setting, e.g. sparsity=0.6 or int8.int8_io=true (repeatable)")
    sweep.add_argument("--weights", help="ImageNet weights file for a zoo architecture")
    sweep.add_argument("--signature", default="", help="a plain SavedModel's signature (default serving_default)")
    sweep.add_argument("--budget", type=float, metavar="SECONDS",
                       help="time budget per scheme; a scheme that runs longer is stopped and marked timeout")
    sweep.add_argument("--recompute", action="store_true", help="run and measure again even if the store has the result "
                                                                    "(the float32 conversion stays cached)")
    sweep.add_argument("--trust", action="store_true",
                       help="allow Lambda layers and custom objects (runs code from the model file)")
    sweep.add_argument("--task", default="auto",
                       help="what the outputs are for: auto (detected), classification, binary or regression; "
                            "with several outputs NAME=TASK,...,primary=NAME")
    sweep.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    sweep.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="where jobs run: worker processes here (default) or Ray tasks")
    sweep.add_argument("--ray-address", help="Ray cluster to join (default $RAY_ADDRESS, else start Ray here)")
    sweep.add_argument("--ray-cpus", type=int, default=1, help="CPUs per job on Ray (default 1)")
    sweep.add_argument("--latency-node", metavar="RESOURCE",
                       help="time every latency on the Ray node with this custom resource, after the builds")

    search = sub.add_parser("search", help="find the smallest or fastest model within an accuracy loss")
    search.add_argument("--model", required=True)
    search.add_argument("--data", required=True)
    search.add_argument("--max-loss", type=float, default=0.01,
                        help="accepted accuracy loss relative to float32 top-1 (default 0.01 = 1%%)")
    search.add_argument("--objective", default="size", choices=("size", "latency", "mix"))
    search.add_argument("--trials", type=int, default=8, help="most candidates to try (default 8)")
    search.add_argument("--budget", type=float, metavar="SECONDS", help="stop starting trials after this long")
    search.add_argument("--store")
    search.add_argument("--param", action="append", metavar="KEY=VALUE")
    search.add_argument("--target", metavar="DEVICE", help="only models that run on this device: "
                        "mcu:ram=64KB,flash=256KB (KB = 1,000 bytes, KiB = 1,024), gpu, or integer")
    search.add_argument("--trust", action="store_true",
                        help="allow Lambda layers and custom objects (runs code from the model file)")
    search.add_argument("--json", action="store_true")

    layers = sub.add_parser("layers", help="which layers lose most in int8 (and int16x8), with the debugger's metrics")
    layers.add_argument("--model", required=True)
    layers.add_argument("--data", required=True)
    layers.add_argument("--top", type=int, default=5, help="how many of the worst layers to list (default 5)")
    layers.add_argument("--store")
    layers.add_argument("--trust", action="store_true",
                        help="allow Lambda layers and custom objects (runs code from the model file)")
    layers.add_argument("--json", action="store_true", help="print the whole report as one JSON document")

    listing = sub.add_parser("schemes", help="list the schemes and their settings")
    listing.add_argument("--model", help="say which schemes this model can take, and why not the others "
                                         "(read from the file's format, nothing is loaded)")
    listing.add_argument("--json", action="store_true")

    recommend = sub.add_parser("recommend", help="answer the wizard's questions, get ranked schemes")
    from optlib.guide import wizard

    for question in wizard.QUESTIONS:
        recommend.add_argument(f"--{question.id.replace('_', '-')}", dest=question.id, choices=question.values,
                               help=question.text + (f" (default {question.default})" if question.default else ""))
    recommend.add_argument("--model", help="show measured figures of this model from the store")
    recommend.add_argument("--dataset", help="... on this dataset")
    recommend.add_argument("--store")
    recommend.add_argument("--json", action="store_true")

    results = sub.add_parser("results", help="list stored results")
    results.add_argument("--store")
    results.add_argument("--model")
    results.add_argument("--data")
    results.add_argument("--scheme")
    results.add_argument("--json", action="store_true")
    return parser


def _sweep(args):
    from optlib.engine import sweep

    overrides = _params(args.param)
    for name in ("threads", "runs", "epochs"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)

    from optlib.engine import grid

    varying = grid.varying(sweep.plan(args.model, args.data, args.schemes, overrides, args.weights,
                                        trusted=args.trust, signature=args.signature)[1])

    def progress(event):
        if not args.json and event.stage not in ("running", "starting") and event.scheme:
            print(f"[{event.index + 1}/{event.total}] {grid.label(event.scheme, varying[event.index])}: {event.stage}"
                  + (f" ({event.message})" if event.stage == "failed" else ""), file=sys.stderr)
        elif event.stage == "queued":
            print(f"The sweep is {event.message}.", file=sys.stderr)

    executor = None
    if args.executor == "ray" or args.ray_address or args.latency_node:
        from optlib.engine.ray_executor import RayCluster

        executor = RayCluster(args.ray_address, args.ray_cpus, args.budget, args.latency_node)
    try:
        result = sweep.run(args.model, args.data, args.schemes, overrides, args.store,
                           recompute=args.recompute, progress=progress, trusted=args.trust, weights=args.weights,
                           budget_s=None if executor else args.budget, executor=executor, task=args.task,
                           signature=args.signature)
    finally:
        if executor:
            executor.close()
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print(format_table(result["results"]))
    return 0


def format_table(rows):
    """Return results as a fixed-width text table (blank where a figure was not measured).

    The metric column is the task's (top-1, accuracy at 0.5, MAE): its header names it when every row shares
    it, otherwise each cell does. "SNR dB" is each run's fidelity to the Keras float model.
    """
    from optlib.analysis import quality

    def cell(value, fmt, width):
        return f"{'' if value is None else format(value, fmt):>{width}}"

    def size(value):
        return f"{'' if value is None else format_bytes(value):>11}"

    measured = [r for r in rows if quality.value(r) is not None]
    names = {quality.name(r) for r in measured}
    one = names.pop() if len(names) == 1 else None
    header = quality.SHORT_NAMES.get(one, one) if one else "metric"
    width = 20 if measured and not one else max(8, len(header) + 1)

    def metric(r):
        found = quality.value(r)
        if found is None:
            return " " * width
        if one:
            return cell(found, ".4g", width)
        named = f"{quality.short_name(r)} {found:.4g}"
        return f"{named:>{width}}"

    lines = [f"{'scheme':<18}{'status':<12}{header:>{width}}{'SNR dB':>8}{'size':>11}{'gzip':>11}{'ms (med)':>10}"
             f"{'sparsity':>10}  note"]
    for r in rows:
        lines.append(f"{r['scheme']:<18}{r['status']:<12}{metric(r)}{cell(r.get('fidelity_snr_db'), '.1f', 8)}"
                     f"{size(r.get('size_bytes'))}{size(r.get('gzip_bytes'))}"
                     f"{cell((r.get('latency_ms') or {}).get('median'), '.3g', 10)}"
                     f"{cell(r.get('sparsity'), '.2f', 10)}  "
                     + (r.get("error") or ("from store" if r.get("cached") else "")))
    if one and not quality.higher_is_better(measured[0]):
        lines.append(f"({one}: lower is better)")
    return "\n".join(lines)


def _schemes(args):
    from optlib.inputs import graph_models, models

    schemes.check_plugins()
    form = models.resolve(args.model).form if args.model else "keras"
    in_all = schemes.for_form(form)
    rows = [{"name": s.name, "family": s.family, "title": s.title, "needs": s.needs, "summary": s.summary,
             "settings": {p.name: p.default for p in schemes.params_of(s.name)},
             "ranges": {p.name: list(p.choices) if p.choices else [p.min, p.max] for p in schemes.params_of(s.name)
                        if p.choices or p.min is not None or p.max is not None},
             "backend": s.backend, "in_all": s.name in in_all, "cannot": schemes.refusal(s.name, form)}
            for s in schemes.list_schemes(variants=True)]
    if args.json:
        print(json.dumps(rows))
    elif args.model:
        print(f"{Path(args.model).name} is {graph_models.FORMS[form]}.")
        for r in rows:
            print(f"{r['name']:<18}{'in all' if r['in_all'] else 'can run' if not r['cannot'] else 'no':<9}"
                  f"{r['cannot'] or r['title']}")
    else:
        for r in rows:
            print(f"{r['name']:<18}{r['family']:<15}{r['summary']}")
        print("\n'all' runs the schemes that are not variants; the variants (int8_selective and LiteRT Quantizer's "
              "lq_ schemes) run when named, and --schemes litert-quantizer selects every lq_ scheme.")
    return 0


def _results(args):
    from optlib.engine.store import Store, result_row

    rows = [result_row(r) for r in Store(args.store).rows(args.model, args.data, args.scheme)]
    if args.json:
        print(json.dumps(rows, default=str))
    else:
        print(format_table(rows) if rows else "No stored results.")
    return 0


def _search(args):
    from optlib.analysis.search import search
    from optlib.engine import targets

    device = targets.parse_device(args.target) if args.target else None

    def progress(event):
        if not args.json and event.stage in ("ok", "failed", "timeout", "cached") and event.scheme:
            print(f"  {event.scheme}: {event.stage}", file=sys.stderr)

    result = search(args.model, args.data, args.max_loss, args.objective, args.trials, args.budget, args.store,
                    _params(args.param), progress, trusted=args.trust, device=device)
    if args.json:
        print(json.dumps(result, default=str))
        return 0
    base, target = result["baseline"], result["target"]
    metric = base["metric_name"]
    print(f"Target: {metric} {'at least' if base['higher_is_better'] else 'at most'} {target['bound']:.4g} "
          f"(float32 {base['metric_value']:.4g}, at most {100 * args.max_loss:.2f}% lost); objective: {args.objective}"
          + (f"; runs on {device['label']}" if device else ""))
    for number, trial in enumerate(result["trail"], 1):
        settings = ", ".join(f"{k}={v}" for k, v in trial["settings"].items())
        acc = "" if trial.get("metric_value") is None else f"{metric} {trial['metric_value']:.4g}, "
        size = "" if trial.get("size_bytes") is None else f"{format_bytes(trial['size_bytes'])}: "
        print(f"{number}. {trial['scheme']}{f' ({settings})' if settings else ''}: {acc}{size}{trial['verdict']}")
    print(("Met: " if result["met"] else "Not met: ") + result["explanation"])
    return 0


def _layers(args):
    from optlib.analysis import insight
    from optlib.engine import layers

    def progress(fraction, message):
        if not args.json:
            print(f"  [{100 * fraction:3.0f}%] {message}", file=sys.stderr)

    report = insight.layer_report(args.model, args.data, args.store, args.trust, progress)
    if args.json:
        print(json.dumps(report, default=str))
        return 0
    runs = ", ".join(f"{name} #{row['id']}" for name, row in report["runs"].items() if row.get("id") is not None)
    print(f"Compared on {report['samples']} inputs ({runs}). Channel error: RMSE over RMS of the float output, "
          "median over channels.")
    for label in report["labels"]:
        print(f"Worst layers in {label} (position, op, channel error, layer):")
        by_name = {row["layer"]: row for row in report["layers"]}
        for name in layers.worst_layers(report["layers"], label, args.top):
            row = by_name[name]
            print(f"  {row['position']:3d} {row['op']:<18} {row[f'{label}_error']:.4f}  {name}")
    if report["int16_problem"]:
        print(f"Note: {report['int16_problem']}")
    if report["debugger"]:
        worst = sorted(report["debugger"], key=lambda r: -(r.get("rmse/scale") or 0))[:args.top]
        print("QuantizationDebugger (int8), largest RMSE/scale:")
        for row in worst:
            value = row.get("rmse/scale")  # None where the tensor's scale is 0
            print(f"  {row['op_name']:<18} rmse/scale {'n/a' if value is None else f'{value:.3f}'}  "
                  f"{row['tensor_name']}")
    elif report["debugger_problem"]:
        print(f"Note: the QuantizationDebugger could not run: {report['debugger_problem']}")
    return 0


def _recommend(args):
    from dataclasses import asdict

    from optlib.analysis import quality
    from optlib.api import recommend
    from optlib.guide import wizard

    answers = {q.id: getattr(args, q.id) for q in wizard.QUESTIONS if getattr(args, q.id) is not None}
    rec = recommend(**answers)
    measured = _measured(args, wizard.schemes(rec)) if args.model else {}
    if args.json:
        cited = {item.source: dict(zip(("title", "url"), wizard.SOURCES[item.source])) for item in rec.items}
        print(json.dumps({"answers": answers, **asdict(rec), "sources": cited, "measured": measured}))
        return 0
    print("Path: " + " -> ".join(f"{node}={answer}" for node, answer in rec.path))
    for rank, item in enumerate(rec.items, 1):
        print(f"{rank}. {item.scheme} ({item.role}): {item.reason}\n   Trade-off: {item.tradeoff}\n"
              f"   Source: {wizard.cite(item.source)}")
        if item.scheme in measured:
            m = measured[item.scheme]
            figure = quality.text(m) or "no accuracy measured"
            print(f"   Measured on {m['model']} / {m['dataset']}: {figure}, {format_bytes(m['size_bytes'])} "
                  f"(gzip {format_bytes(m['gzip_bytes'])}), {m['latency_ms']['median']:.2f} ms")
            print(_where_line(m, answers.get("hardware")), end="")
    for warning in rec.warnings:
        print(f"Warning: {warning}")
    return 0


def _where_line(measured, hardware):
    """'   Measured for your hardware: ...' from a stored run's targets (empty when the hardware has no target)."""
    from optlib.analysis import where

    _, line = where.for_hardware(measured.get("targets"), hardware)
    return f"   Measured for your hardware: {line}\n" if line else ""


def _measured(args, names):
    """Latest stored ok result per scheme for the given model (and dataset)."""
    from optlib.engine.store import Store, result_row

    found = {}
    for row in Store(args.store).rows(model=args.model, dataset=args.dataset, status="ok"):
        if row["scheme"] in names and row["scheme"] not in found:
            r = result_row(row)
            found[row["scheme"]] = {k: r.get(k) for k in ("model", "dataset", "accuracy", "metric_name", "metric_value",
                                                          "higher_is_better", "size_bytes", "gzip_bytes",
                                                          "latency_ms", "id", "targets")}
    return found


def main(argv=None):
    """Run the CLI; return the exit status."""
    logging.basicConfig(level=logging.ERROR)  # the toolkit logs notices on the root logger
    try:
        args = build_parser().parse_args(argv)
        commands = {"sweep": _sweep, "schemes": _schemes, "results": _results, "recommend": _recommend,
                    "search": _search, "layers": _layers}
        return commands[args.command](args)
    except InputError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; finished schemes are kept in the store, run again to continue.",
              file=sys.stderr)
        return 130
