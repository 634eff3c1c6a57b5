"""The Table 1 architectures (large): marked slow, still run in CI."""

import pytest

from optlib.engine import sweep
from optlib.engine.store import Store


@pytest.mark.slow
def test_mobilenet_v2_int8_is_at_least_3_5x_smaller_and_int16x8_fails_cleanly(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no ImageNet weights: size and latency only
    store = Store(tmp_path / "r.sqlite")
    result = sweep.run("mobilenet_v2", "digits", "float32,int8,int16x8",
                       {"runs": "3", "warmup": "1", "rep_samples": "100"}, store)
    rows = {r["scheme"]: r for r in result["results"]}
    assert rows["float32"]["status"] == rows["int8"]["status"] == "ok"
    assert rows["float32"]["size_bytes"] / rows["int8"]["size_bytes"] >= 3.5
    assert rows["int8"]["accuracy"] is None and "size and latency only" in rows["int8"]["accuracy_note"]
    # int16x8 of MobileNetV2 cannot be allocated (a DEPTHWISE_CONV_2D overflow check): a failed row, no artifact
    if rows["int16x8"]["status"] == "failed":
        assert "DEPTHWISE_CONV_2D" in rows["int16x8"]["error"] and rows["int16x8"]["tflite_path"] is None
        assert not list(store.artifacts.glob("int16x8-*"))
