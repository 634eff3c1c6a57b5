"""How long a large model file takes to open: ResNet50 (25.6 million parameters, untrained) saved by tf_keras as
a ``.keras`` file (103 MB), through the loader's two steps as every worker runs them: the weights' declared size
read from the HDF5 headers (:func:`optlib.inputs.limits.check_model`), and tf_keras's loading of the model
(``load_model``), each in this process after TensorFlow's import, and the whole :func:`optlib.inputs.models.load`.

    .venv/bin/python -m bench.model_load [--repeats 3]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path


def bench_model_load(summary, repeats):
    from optlib._keras import keras
    from optlib.inputs import limits, models

    k = keras()
    with tempfile.TemporaryDirectory(prefix="bench-model-load-") as folder:
        path = Path(folder) / "resnet50.keras"
        k.applications.ResNet50(weights=None).save(path, save_format="keras_v3")
        check, load, whole = [], [], []
        for _ in range(repeats):
            started = time.perf_counter()
            limits.check_model(path, "keras")
            check.append(time.perf_counter() - started)
            started = time.perf_counter()
            k.models.load_model(str(path), compile=False)
            load.append(time.perf_counter() - started)
            started = time.perf_counter()
            models.load(models.resolve(str(path)))
            whole.append(time.perf_counter() - started)
            k.backend.clear_session()
        return {"file_mb": round(path.stat().st_size / 1e6, 1), "declared_weights_s": summary(check),
                "tf_keras_load_s": summary(load), "models_load_s": summary(whole)}


def markdown_lines(r):
    return [f"| ResNet50 `.keras` ({r['file_mb']} MB): {name} | {r[key]['median']:.2f} s | "
            f"{r[key]['spread']:.2f} s | | |"
            for name, key in (("declared weights read", "declared_weights_s"), ("tf_keras loads it", "tf_keras_load_s"),
                              ("the loader, both steps and the allowlist", "models_load_s"))]


if __name__ == "__main__":
    from bench.run import summary

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    result = bench_model_load(summary, parser.parse_args().repeats)
    print(json.dumps(result, indent=1))
    print("\n".join(markdown_lines(result)))
