"""Result rows made by hand, shaped like :func:`optlib.engine.store.result_row`'s, for the report, chart and
explanation tests."""


def result(scheme, id, model="m", dataset="d", status="ok", accuracy=0.9, size=1000, gzip=900,
           median=2.0, std=0.1, p90=2.5, threads=1, fastest=None, **extra):
    """A flat result row shaped like optlib.engine.store.result_row's output."""
    row = {"id": id, "scheme": scheme, "status": status, "error": None, "cached": False, "model": model,
           "dataset": dataset, "settings": {"threads": threads, "runs": 50, "warmup": 5}}
    if status == "ok":
        row.update(size_bytes=size, gzip_bytes=gzip, threads=threads, accuracy=accuracy, trained=accuracy is not None,
                   latency_ms={"median": median, "p90": p90, "mean": median, "std": std,
                               "min": median if fastest is None else fastest,
                               "runs": 50, "warmup": 5, "threads": threads},
                   sparsity=0.0, max_unique_weights=255, build_s=1.0, recipe={"converter": {}},
                   kernels=[{"name": "k", "shape": [3, 3]}], tflite_path=f"/tmp/{scheme}-{id}.tflite")
    else:
        row["error"] = "RuntimeError: boom"
    row.update(extra)
    return row


def short_result(scheme, id, accuracy, size, latency, gzip=None, model="digits_cnn", threads=1, **extra):
    """A stored run with just the figures a chart or an explanation reads."""
    return {"id": id, "scheme": scheme, "status": "ok", "model": model, "dataset": "digits", "accuracy": accuracy,
            "size_bytes": size, "gzip_bytes": gzip or size * 0.9, "latency_ms": {"median": latency},
            "threads": threads, "settings": {}, **extra}
