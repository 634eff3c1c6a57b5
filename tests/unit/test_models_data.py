"""Model files and datasets in every supported form, and the refusal of layers the toolkit cannot wrap."""

import zipfile

import numpy as np
import pytest
from PIL import Image

from optlib.engine import sweep
from optlib.inputs import data_refs, limits, models, preparation
from optlib.errors import InputError
from optlib.engine.executors import InProcess
from optlib.engine.store import Store
from tests.conftest import build_tiny_model

FAST = {"epochs": "1", "runs": "3", "warmup": "1", "rep_samples": "16"}


def one(model_ref, data_ref, tmp_path, selection="float32", **kwargs):
    result = sweep.run(str(model_ref), str(data_ref), selection, FAST, Store(tmp_path / "r.sqlite"), **kwargs)
    return result["results"]


def test_h5_savedmodel_and_zipped_savedmodel_load_and_run(tmp_path, tiny_model_path, digits_npz):
    model = models.load(models.resolve(str(tiny_model_path)))
    model.save(tmp_path / "m.h5")
    model.save(tmp_path / "saved", save_format="tf")
    with zipfile.ZipFile(tmp_path / "saved.zip", "w") as bundle:
        for file in (tmp_path / "saved").rglob("*"):
            bundle.write(file, "saved/" + str(file.relative_to(tmp_path / "saved")))
    for ref in (tmp_path / "m.h5", tmp_path / "saved", tmp_path / "saved.zip"):
        row = one(ref, digits_npz, tmp_path)[0]
        assert row["status"] == "ok" and row["accuracy"] > 0.5, ref


def test_fingerprints_follow_content(tmp_path, tiny_model_path):
    copy = tmp_path / "copy.keras"
    copy.write_bytes(tiny_model_path.read_bytes())
    assert models.resolve(str(copy)).fingerprint == models.resolve(str(tiny_model_path)).fingerprint
    copy.write_bytes(tiny_model_path.read_bytes() + b"\0")
    assert models.resolve(str(copy)).fingerprint != models.resolve(str(tiny_model_path)).fingerprint


def test_zoo_architecture_without_weights_is_flagged(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    source = models.resolve("mobilenet_v2")
    assert not source.trained and "size and latency only" in source.note
    fake = tmp_path / "w.h5"
    fake.write_bytes(b"weights")
    assert models.resolve("mobilenet_v2", weights=str(fake)).trained
    with pytest.raises(InputError, match="not found"):
        models.resolve("mobilenet_v2", weights=str(tmp_path / "missing.h5"))


def _image_folder(root, digits_arrays, per_class=12):
    x_train, y_train, _, _ = digits_arrays
    for label in range(3):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True)
        for i, image in enumerate(x_train[y_train == label][:per_class]):
            Image.fromarray((image * 255 / 16).astype(np.uint8)).save(folder / f"{i}.png")
    (root / "class_0" / "broken.png").write_bytes(b"not an image")
    return root


def test_image_folder_and_zip_of_one(tmp_path, digits_arrays):
    from optlib._keras import keras

    root = _image_folder(tmp_path / "images", digits_arrays)
    model = build_tiny_model(classes=3, input_shape=(16, 16, 3))
    dataset = preparation.load(data_refs.resolve(str(root)), model)
    assert dataset.num_classes == 3 and dataset.class_names == ["class_0", "class_1", "class_2"]
    assert dataset.x_test.shape[1:] == (16, 16, 3) and 0 <= dataset.x_test.min() and dataset.x_test.max() <= 1
    assert "skipped 1 unreadable or oversized image(s)" in dataset.summary()["notes"]
    assert len(dataset.raw.x_test) + len(dataset.raw.x_train) == 36
    with zipfile.ZipFile(tmp_path / "images.zip", "w") as bundle:
        for file in root.rglob("*.png"):
            bundle.write(file, "images/" + str(file.relative_to(root)))
    zipped = preparation.load(data_refs.resolve(str(tmp_path / "images.zip")), model)
    assert zipped.num_classes == 3 and len(zipped.raw.x_test) == len(dataset.raw.x_test)
    assert isinstance(keras(), object)


def test_recipe_records_resize_channels_and_scale(digits_npz):
    model = build_tiny_model(input_shape=(16, 16, 3))
    dataset = preparation.load(data_refs.resolve(str(digits_npz)), model, scale="-1..1")
    assert dataset.recipe["resize"] == "8x8 -> 16x16 (bilinear)"
    assert dataset.recipe["channels"] == "1 -> 3"
    assert dataset.recipe["scale"] == "x / 16 -> [-1, 1]"
    assert dataset.x_test.shape == (360, 16, 16, 3)
    assert dataset.x_test.min() >= -1.0 and dataset.x_test.max() <= 1.0 and dataset.x_test.min() < -0.9
    rep = dataset.representative(50)
    assert rep.shape == (50, 16, 16, 3)


def test_npz_without_training_split_refuses_training_schemes_only(tmp_path, tiny_model_path, digits_arrays):
    _, _, x_test, y_test = digits_arrays
    np.savez(tmp_path / "test_only.npz", x_test=x_test, y_test=y_test)
    rows = {r["scheme"]: r for r in one(tiny_model_path, tmp_path / "test_only.npz", tmp_path, "int8,qat")}
    assert rows["int8"]["status"] == "ok"
    assert rows["qat"]["status"] == "failed"
    assert "no training split" in rows["qat"]["error"]


def test_tfds_dataset_prepared_locally(tmp_path, monkeypatch, digits_arrays, tiny_model_path):
    import tensorflow_datasets as tfds

    x_train, y_train, x_test, y_test = digits_arrays

    class TinyDigits(tfds.core.GeneratorBasedBuilder):
        """Digits as a tfds dataset, made by the test (no download)."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, supervised_keys=("image", "label"), features=(
                tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(8, 8, 1)),
                                            "label": tfds.features.ClassLabel(num_classes=10)})))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(x_train, y_train), "test": self._generate_examples(x_test, y_test)}

        def _generate_examples(self, x, y):
            for i, (image, label) in enumerate(zip(x, y)):
                yield i, {"image": (image[..., None] * 255 / 16).astype(np.uint8), "label": int(label)}

    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    TinyDigits(data_dir=str(tmp_path / "tfds")).download_and_prepare()  # prepared on the server beforehand
    rows = one(tiny_model_path, "tfds:tiny_digits", tmp_path, executor=InProcess())  # the builder lives here
    assert rows[0]["status"] == "ok" and rows[0]["accuracy"] > 0.5 and rows[0]["accuracy_samples"] == 360
    with pytest.raises(InputError, match="has no split 'validation'; it has: "):
        one(tiny_model_path, "tfds:tiny_digits:validation", tmp_path, executor=InProcess())
    with pytest.raises(InputError, match="'no_such_dataset_xyz' is not prepared on this server"):
        one(tiny_model_path, "tfds:no_such_dataset_xyz", tmp_path)


def test_unsupported_layer_fails_its_schemes_before_training(tmp_path, digits_npz):
    from optlib._keras import keras

    k = keras()
    model = build_tiny_model([k.layers.Conv2D(4, 3), k.layers.Flatten(), k.layers.UnitNormalization()])
    model.save(tmp_path / "unit.keras", save_format="keras_v3")
    events = []
    rows = {r["scheme"]: r for r in one(tmp_path / "unit.keras", digits_npz, tmp_path,
                                          "float32,qat,prune,cluster", progress=events.append)}
    assert rows["float32"]["status"] == "ok" and rows["cluster"]["status"] == "ok"
    for name, technique in (("qat", "quantization-aware training"), ("prune", "pruning")):
        assert rows[name]["status"] == "failed"
        assert rows[name]["error"] == (
            f"Layer 'unit_normalization' (UnitNormalization) is not supported by {technique} in the Model "
            "Optimization Toolkit; it needs a custom config for that layer, or a model without it.")
        assert not [e for e in events if e.scheme == name and "epoch" in e.message]


def test_hdf5_content_under_a_keras_name_is_read_as_h5_with_its_checks(tmp_path, digits_npz):
    from optlib._keras import keras

    k = keras()
    build_tiny_model().save(tmp_path / "real.h5")
    (tmp_path / "named.keras").write_bytes((tmp_path / "real.h5").read_bytes())
    assert models.resolve(str(tmp_path / "named.keras")).kind == "h5"
    assert one(tmp_path / "named.keras", digits_npz, tmp_path)[0]["status"] == "ok"
    build_tiny_model([k.layers.Lambda(lambda t: t * 2.0), k.layers.Flatten()]).save(tmp_path / "lam.h5")
    (tmp_path / "lam.keras").write_bytes((tmp_path / "lam.h5").read_bytes())
    with pytest.raises(InputError, match="Lambda"):
        models.load(models.resolve(str(tmp_path / "lam.keras")))


def test_the_built_in_cnn_names_its_layers_the_same_whatever_the_process_made_before(keras_):
    """Layer insight shows tensor names ("dense/MatMul") that come from layer names; Keras numbers unnamed layers
    after those made earlier in the process, so a server (or a test run) that built other models first would
    otherwise train and cache a digits CNN whose layers read "dense_14"."""
    from optlib.inputs.models import digits_cnn_architecture

    keras_.Sequential([keras_.layers.Input((3,)), keras_.layers.Dense(2), keras_.layers.Dense(2)])  # made earlier
    names = [layer.name for layer in digits_cnn_architecture(keras_).layers]
    assert names == ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "flatten", "dense", "dense_1"]


def test_a_keras_files_weights_are_read_in_one_pass_not_by_seeking_inside_the_zip(tmp_path, keras_, monkeypatch):
    # h5py seeks back and forth in the weights file; inside a zip, each seek back inflated the member again from
    # its start: ResNet50's 103 MB took 2.2-2.7 s to check and 12-14 s to load, 0.1 s and 2.2 s read in one pass.
    layers = [keras_.layers.Dense(64, activation="relu") for _ in range(30)]
    model = keras_.Sequential([keras_.Input((64,)), *layers, keras_.layers.Dense(10)])
    path = tmp_path / "deep.keras"
    model.save(path, save_format="keras_v3")
    seeks = []
    seek = zipfile.ZipExtFile.seek
    monkeypatch.setattr(zipfile.ZipExtFile, "seek", lambda self, *args: seeks.append(args) or seek(self, *args))
    source = models.resolve(str(path))
    assert limits.check_model(source.path, source.kind) == sum(w.numpy().nbytes for w in model.weights)
    loaded = models.load(source)  # the checks (declared weights, allowlist), then tf_keras's loading
    assert seeks == []
    for saved, read in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(saved.numpy(), read.numpy())
