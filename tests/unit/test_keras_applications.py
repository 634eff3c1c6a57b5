"""Keras Applications as people load them (untrained, at 32x32): each runs the five post-training schemes.

Slow (two real architectures through the converter five times each), so a file of its own: the test
processes run it beside the rest.
"""

import numpy as np
import pytest
from usermodels import _classes, _npz, _save, _sweep


@pytest.mark.slow
@pytest.mark.parametrize("application", ["MobileNetV3Small", "EfficientNetB0"])
def test_keras_applications_load_and_run(tmp_path, keras_, workers, application):
    rng = np.random.default_rng(9)
    model = getattr(keras_.applications, application)(input_shape=(32, 32, 3), weights=None, classes=5)
    data = _npz(tmp_path, "tiny_images", x_test=rng.integers(0, 256, (8, 32, 32, 3)).astype("uint8"),
                y_test=_classes(rng, 8, 5))
    rows = _sweep(_save(model, tmp_path, application), data, tmp_path, workers)
    assert rows["float32"]["fidelity"]["top1_agreement"] == 1.0
