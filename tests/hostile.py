"""Files that declare far more than they hold, made without ever holding it in memory.

The tests (tests/unit/test_limits.py) and the benchmark (bench/run.py, section "limits") use them:
each must be refused from its headers, before anything is loaded.
"""

import json
import struct
import zipfile
import zlib

import numpy as np
from numpy.lib import format as npy

GB = 1_000_000_000


def compressible_npz(path, declared=GB, chunk=1 << 22):
    """An ``.npz`` of zeros whose ``x_test`` declares ``declared`` bytes (float32); about 1 MB per GB on disk.

    The zeros are written in chunks, so making it never holds the array.
    """
    count = declared // (28 * 28 * 4)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bundle:
        with bundle.open("x_test.npy", "w", force_zip64=True) as stream:
            npy.write_array_header_1_0(stream, {"descr": "<f4", "fortran_order": False, "shape": (count, 28, 28)})
            zeros, left = bytes(chunk), count * 28 * 28 * 4
            while left:
                stream.write(zeros[:min(chunk, left)])
                left -= min(chunk, left)
        with bundle.open("y_test.npy", "w") as stream:
            npy.write_array(stream, np.zeros(count, np.uint8))
    return path


def _png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def huge_png(path, width=30_000, height=30_000):
    """A PNG whose header declares ``width`` x ``height`` RGB pixels; its data holds a few rows only."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(bytes((1 + 3 * width) * 4))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", rows)
                     + _png_chunk(b"IEND", b""))
    return path


def image_folder_with(root, bomb):
    """Two class folders of small PNGs, with ``bomb`` (a path to an image file) among class 1's."""
    from PIL import Image

    for label in range(2):
        (root / f"class_{label}").mkdir(parents=True)
        for index in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * index, np.uint8)).save(root / f"class_{label}" / f"{index}.png")
    (root / "class_1" / "big.png").write_bytes(bomb.read_bytes())
    return root


def _weights_h5(handle, shape):
    """A dense layer's weights whose kernel declares ``shape`` float32; chunked and never written, so the
    file holds no data."""
    group = handle.create_group("layers/dense/vars")
    group.create_dataset("0", shape=shape, dtype="float32", chunks=(64, 64))
    group.create_dataset("1", shape=(shape[1],), dtype="float32", chunks=(64,))


def _dense_config(units, inputs):
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "big", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer",
         "config": {"batch_input_shape": [None, inputs], "dtype": "float32", "name": "input"}},
        {"module": "keras.layers", "class_name": "Dense",
         "config": {"name": "dense", "units": units, "activation": "softmax"}}]}}


def big_keras(path, units=30_000, inputs=30_000):
    """A ``.keras`` zip whose weights file declares an ``inputs`` x ``units`` float32 kernel (3.6 GB by default)."""
    import io

    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        _weights_h5(handle, (inputs, units))
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("metadata.json", json.dumps({"keras_version": "2.21.0", "date_saved": "2026-11-30"}))
        bundle.writestr("config.json", json.dumps(_dense_config(units, inputs)))
        bundle.writestr("model.weights.h5", buffer.getvalue())
    return path


def huge_layer_keras(path, units=30_000, inputs=30_000):
    """A ``.keras`` zip of a few kilobytes whose weights file declares a tiny kernel while its configuration
    declares an ``inputs`` x ``units`` Dense layer: the size check passes, and building the model would
    take 3.6 GB (by default) before the weights are found not to fit."""
    import io

    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        _weights_h5(handle, (64, 64))
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("metadata.json", json.dumps({"keras_version": "2.21.0", "date_saved": "2026-11-30"}))
        bundle.writestr("config.json", json.dumps(_dense_config(units, inputs)))
        bundle.writestr("model.weights.h5", buffer.getvalue())
    return path


def big_h5(path, units=30_000, inputs=30_000):
    """A legacy ``.h5`` model whose one kernel declares ``inputs`` x ``units`` float32."""
    import h5py

    with h5py.File(path, "w") as handle:
        handle.attrs["model_config"] = json.dumps(_dense_config(units, inputs))
        weights = handle.create_group("model_weights/dense/dense")
        weights.create_dataset("kernel:0", shape=(inputs, units), dtype="float32", chunks=(64, 64))
        weights.create_dataset("bias:0", shape=(units,), dtype="float32", chunks=(64,))
    return path
