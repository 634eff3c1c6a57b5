"""The same quantization through both backends: TFLiteConverter and LiteRT Quantizer, side by side.

:func:`side_by_side` reads a results frame (:func:`optlib.analysis.report.frame`)
and pairs, for each model and dataset, the newest ok run of a converter scheme
with the newest ok run of its LiteRT Quantizer counterpart: size, accuracy,
latency and build time. The converter builds from the Keras model; LiteRT
Quantizer builds from the float32 conversion, made once and shared, whose
time is shown on its own.
"""

import math

import pandas as pd

from optlib.engine import schemes

BACKEND_TITLES = schemes.BACKENDS


def pairs():
    """(converter scheme, LiteRT Quantizer scheme) that make the same quantization, from the registry's
    :func:`~optlib.engine.schemes.counterparts`; the converter's own variants (selective int8, which picks its
    layers another way) are left out."""
    return [(converter, lq) for converter, lq in schemes.counterparts().items()
            if not schemes.get(converter).variant_of]


def counterpart(name):
    """The other backend's scheme for the same quantization (None if there is none)."""
    for converter, lq in pairs():
        if name in (converter, lq):
            return lq if name == converter else converter
    return None


def side_by_side(df):
    """Return one row per model, dataset, quantization and backend that has an ok run, paired.

    Columns: model, dataset, quantization (the converter scheme's name), backend (title), scheme, id,
    size_mb, accuracy (top-1; NaN for other tasks), metric_name and metric_value (the task's metric), latency_ms,
    build_s (the job's wall time: for LiteRT Quantizer it may or may not
    include the float32 conversion, made by whichever job came first and then shared), quantize_s
    (LiteRT Quantizer's calibration plus quantization, NaN for the converter), float32_convert_s (the
    shared conversion it starts from), from_keras_s (the time from the Keras model to the file: the
    converter's build; LiteRT Quantizer's float32 conversion plus its calibration and quantization),
    and build_ratio: the converter's from_keras_s / this row's, on LiteRT Quantizer's rows ("times
    faster from the Keras model"; NaN when the pair is incomplete).
    """
    columns = ["model", "dataset", "quantization", "backend", "scheme", "id", "size_mb", "accuracy", "metric_name",
               "metric_value", "latency_ms", "build_s", "quantize_s", "float32_convert_s", "from_keras_s", "build_ratio"]
    if df is None or df.empty:
        return pd.DataFrame(columns=columns)
    ok = df[df["status"].eq("ok")].sort_values("id")
    rows = []
    for (model, dataset), group in ok.groupby(["model", "dataset"], sort=False):
        newest = group.groupby("scheme").tail(1).set_index("scheme")
        for converter, lq in pairs():
            if converter not in newest.index and lq not in newest.index:
                continue
            base = newest.loc[converter]["build_s"] if converter in newest.index else math.nan
            for name in (converter, lq):
                if name not in newest.index:
                    continue
                run = newest.loc[name]
                entry = schemes.get(name)
                lq_row = entry.backend == "litert-quantizer"
                quantize = _sum(run, "calibrate_s", "quantize_s") if lq_row else math.nan
                from_keras = quantize + run["float32_convert_s"] if lq_row else run["build_s"]
                rows.append({"model": model, "dataset": dataset, "quantization": converter,
                             "backend": BACKEND_TITLES[entry.backend], "scheme": name, "id": int(run["id"]),
                             "size_mb": run["size_mb"], "accuracy": run["accuracy"], "metric_name": run["metric_name"],
                             "metric_value": run["metric_value"], "latency_ms": run["latency_ms"],
                             "build_s": run["build_s"], "quantize_s": quantize,
                             "float32_convert_s": run["float32_convert_s"] if lq_row else math.nan,
                             "from_keras_s": from_keras,
                             "build_ratio": base / from_keras if lq_row and from_keras else math.nan})
    return pd.DataFrame(rows, columns=columns)


def _sum(run, *names):
    values = [run.get(name) for name in names]
    return math.nan if any(v is None or math.isnan(v) for v in values) else float(sum(values))


def missing_counterparts(df):
    """Names of schemes to run so that every quantization shown has both backends (in registry order)."""
    table = side_by_side(df)
    missing = []
    for (_model, _dataset, quantization), group in table.groupby(["model", "dataset", "quantization"]):
        if len(group) == 1:
            missing.append(counterpart(group.iloc[0]["scheme"]))
    order = [s.name for s in schemes.list_schemes(variants=True)]
    return sorted(set(missing), key=order.index)
