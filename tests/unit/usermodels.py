"""Models as people bring them: save one as a user would, write its data, and sweep it with the checks every
row of such a sweep must pass (ok or failed with its reason; fidelity figures on every ok row)."""

import numpy as np

from optlib.engine import sweep

PTQ = "float32,float16,dynamic,int8,int16x8"
FAST = {"runs": 3, "warmup": 1, "rep_samples": 16}
SAMPLES = 24


def _save(model, folder, name):
    path = folder / f"{name}.keras"
    model.save(path, save_format="keras_v3")
    return path


def _npz(folder, name, **arrays):
    path = folder / f"{name}.npz"
    np.savez(path, **arrays)
    return path


def _sweep(model_path, data_path, tmp_path, workers, schemes=PTQ, task=""):
    # Worker processes, as the CLI and the app run them: a converter that crashes costs one failed row.
    result = sweep.run(str(model_path), str(data_path), schemes, FAST, tmp_path / "store.sqlite", task=task,
                       executor=workers)
    rows = result["results"]
    for row in rows:
        assert row["status"] in ("ok", "failed"), row
        if row["status"] == "failed":
            assert row["error"], row
        else:
            fidelity = row["fidelity"]
            assert {"snr_db", "cosine", "max_abs_error"} <= set(fidelity), row["scheme"]
            assert np.isfinite(fidelity["snr_db"]) and -1.0 <= fidelity["cosine"] <= 1.0 + 1e-6
            assert all("fidelity" in output for output in row["outputs"])
    print(*(f"{model_path.name} {r['scheme']}: {r['status']} " + (r["error"] or f"SNR {r['fidelity']['snr_db']} dB, "
                                                                 f"{r['metric_name']} {r['metric_value']}")
             for r in rows), sep="\n")  # shown with pytest -s
    assert rows[0]["scheme"] == "float32" and rows[0]["status"] == "ok", rows[0]["error"]
    assert rows[0]["fidelity"]["snr_db"] > 40  # float32 LiteRT follows Keras closely (fused RNN kernels: ~54 dB)
    return {row["scheme"]: row for row in rows}


def _classes(rng, count, classes):
    return rng.integers(0, classes, count)
