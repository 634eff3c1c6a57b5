"""Readers of the raw arrays of a data source, one per kind: built-in digits and diabetes, ``.npz``,
image folders (or a zip of one), and tfds. Each returns a :class:`Raw` before any preparation for a model.
"""

import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from optlib.errors import InputError, first_line
from optlib.inputs import limits
from optlib.inputs.tfds_folder import tfds_data_dir, tfds_not_prepared, tfds_prepared

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
TEST_FRACTION = 0.2
SPLIT_SEED = 0


@dataclass
class Raw:
    """Arrays as read from the source, before preparation for a model."""

    x_test: np.ndarray
    y_test: np.ndarray
    x_train: np.ndarray = None
    y_train: np.ndarray = None
    class_names: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    value_range: float = 0.0  # the maximum raw value, for scaling


def _split(x, y):
    from sklearn.model_selection import train_test_split

    classes = y.ndim == 1 and len(y) and np.all(y == np.round(y)) and np.min(y) >= 0 and np.max(y) < 10_000
    counts = np.bincount(y.astype(np.int64)) if classes else []
    stratify = y if len(counts) and min(c for c in counts if c) >= 2 else None
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=stratify)
    return x_train, y_train, x_test, y_test


def _read_digits(source, input_hw):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x_train, y_train, x_test, y_test = _split(digits.images.astype(np.float32), digits.target)
    return Raw(x_test, y_test, x_train, y_train, [str(i) for i in range(10)],
               ["scikit-learn's handwritten digits (8x8, values 0-16)"], 16.0)


def _read_diabetes(source, input_hw):
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    found = load_diabetes()
    x_train, x_test, y_train, y_test = train_test_split(
        found.data.astype(np.float32), found.target.astype(np.float32), test_size=TEST_FRACTION,
        random_state=SPLIT_SEED)
    return Raw(x_test, y_test, x_train, y_train, [],
               ["scikit-learn's diabetes data (442 patients, 10 features already centred and scaled; "
                "target: disease progression a year later)"], 0.0)


def _read_npz(source, input_hw):
    # Only what np.load raises for a bad file becomes an InputError (measured with numpy 2):
    # BadZipFile for a truncated archive or a bad CRC, zlib.error for a corrupt compressed
    # member, EOFError for an empty file, ValueError for object arrays, a bad .npy header or
    # anything else (which numpy takes for a pickle). Any other exception is a bug and surfaces.
    unreadable = f"'{source.name}' is not a readable .npz file (truncated or not numpy)."
    try:
        loaded = np.load(source.path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a lone .npy array under an .npz name
            raise InputError(f"'{source.name}' is not a readable .npz file: it is one .npy array, not an "
                             "archive of them; save the arrays with np.savez(x_test=..., y_test=...).")
        with loaded as bundle:
            arrays = {key: bundle[key] for key in bundle.files}
    except ValueError as error:
        if "Object arrays" in str(error):
            raise InputError(f"'{source.name}' holds pickled objects, which are refused; "
                             "save plain numeric arrays with np.savez.") from None
        if "pickle" in str(error):  # neither a zip archive nor a .npy array
            raise InputError(f"'{source.name}' is not a readable .npz file (not a numpy archive; "
                             "pickles are refused). Save plain numeric arrays with np.savez.") from None
        raise InputError(unreadable) from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError):
        raise InputError(unreadable) from None
    if not all(isinstance(value, np.ndarray) for value in arrays.values()):
        raise InputError(unreadable)  # np.load returns the raw bytes of a member that is not a .npy
    return _from_arrays(arrays, source.name)


def _named(arrays, split):
    """The arrays of one split: ``x_test`` itself, or ``x_test/NAME`` / ``x_test_NAME`` per model input or output."""
    if split in arrays:
        return arrays[split]
    found = {}
    for key, value in arrays.items():
        for mark in (f"{split}/", f"{split}_"):
            if key.startswith(mark) and key[len(mark):]:
                found[key[len(mark):]] = value
    return found or None


def _from_arrays(arrays, name):
    """Raw data from the arrays of an .npz (see :func:`_named` for several inputs and outputs)."""
    x_test, y_test = _named(arrays, "x_test"), _named(arrays, "y_test")
    x_train, y_train = _named(arrays, "x_train"), _named(arrays, "y_train")
    if x_test is not None:
        if (x_train is None) != (y_train is None):
            raise InputError(f"'{name}' has only one of x_train / y_train; give both or neither.")
        raw = Raw(x_test, y_test, x_train, y_train)
        if y_test is None:
            raw.notes.append("no labels (y_test): fidelity to the float model only")
        return raw
    if {"x", "y"} <= arrays.keys():
        check_x(arrays["x"], name, "x/y")
        if len(arrays["x"]) != len(arrays["y"]):
            raise InputError(f"'{name}': x/y has {len(arrays['x'])} samples but {len(arrays['y'])} labels.")
        x_train, y_train, x_test, y_test = _split(arrays["x"], arrays["y"])
        return Raw(x_test, y_test, x_train, y_train, notes=["split 80/20 from x/y"])
    raise InputError(f"'{name}' needs arrays x_test and y_test (and optionally x_train, y_train), or x and y, "
                     f"or x_test alone (fidelity only); it has: {', '.join(arrays) or 'nothing'}.")


def _read_images(folder, name, input_hw):
    from PIL import Image

    classes = sorted(p.name for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise InputError(f"'{name}' needs one sub-folder of images per class (at least two classes).")
    images, labels, skipped = [], [], 0
    Image.MAX_IMAGE_PIXELS = max_pixels = limits.max_image_pixels()
    size = (input_hw[1], input_hw[0]) if input_hw else None
    for label, cls in enumerate(classes):
        for file in sorted((Path(folder) / cls).rglob("*")):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as image:
                    if image.width * image.height > max_pixels:
                        raise ValueError("too large")
                    image = image.convert("RGB")
                    if size is None:
                        size = image.size
                    images.append(np.asarray(image.resize(size, Image.BILINEAR), dtype=np.uint8))
                    labels.append(label)
            except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
                # What PIL raises for an unreadable, truncated or huge image: skip and count it.
                # (UnidentifiedImageError is an OSError; some decoders raise SyntaxError or EOFError.)
                skipped += 1
    if not images:
        raise InputError(f"'{name}' has no readable images in its class folders.")
    x, y = np.stack(images), np.array(labels)
    notes = [f"{len(images)} images in {len(classes)} classes, resized to {size[0]}x{size[1]} on load"]
    if skipped:
        notes.append(f"skipped {skipped} unreadable or oversized image(s)")
    x_train, y_train, x_test, y_test = _split(x, y)
    return Raw(x_test, y_test, x_train, y_train, classes, notes, 255.0)


def _read_folder(source, input_hw):
    return _read_images(source.path, source.name, input_hw)


def _read_zip(source, input_hw):
    from optlib.inputs import archive

    with tempfile.TemporaryDirectory(prefix="optlib-data-") as folder:
        archive.extract(source.path, folder)
        entries = [p for p in Path(folder).iterdir() if not p.name.startswith(("__MACOSX", "."))]
        root = entries[0] if len(entries) == 1 and entries[0].is_dir() and any(
            c.is_dir() for c in entries[0].iterdir()) else Path(folder)
        return _read_images(root, source.name, input_hw)


def _read_tfds(source, input_hw, max_samples=5000):
    from optlib._keras import tf

    tf()
    import tensorflow_datasets as tfds

    data_dir = tfds_data_dir()
    if not tfds_prepared(source.tfds_name, data_dir):  # prepared beforehand, never here (no network here)
        raise InputError(tfds_not_prepared(source.tfds_name))
    try:
        builder = tfds.builder(source.tfds_name, data_dir=data_dir)
    except Exception as error:
        raise InputError(f"tfds has no dataset '{source.tfds_name}' ({first_line(error, 120)}).") from None
    tfds.disable_progress_bar()
    splits = list(builder.info.splits)

    def take(split):
        if split not in splits:
            raise InputError(f"tfds dataset '{source.tfds_name}' has no split '{split}'; "
                             f"it has: {', '.join(splits)}.")
        xs, ys = [], []
        for image, label in tfds.as_numpy(builder.as_dataset(split=split, as_supervised=True).take(max_samples)):
            xs.append(image)
            ys.append(label)
        return np.stack(xs), np.array(ys)

    names = []
    label = builder.info.features["label"] if "label" in builder.info.features else None
    if label is not None and hasattr(label, "names"):
        names = list(label.names)
    if source.tfds_split:
        x_train, y_train, x_test, y_test = _split(*take(source.tfds_split))
    elif "train" in splits and "test" in splits:
        (x_train, y_train), (x_test, y_test) = take("train"), take("test")
    else:
        x_train, y_train, x_test, y_test = _split(*take(splits[0]))
    vmax = 255.0 if x_test.dtype == np.uint8 else 0.0
    return Raw(x_test, y_test, x_train, y_train, names, [f"tfds {source.tfds_name} from {data_dir}"], vmax)


READERS = {"digits": _read_digits, "diabetes": _read_diabetes, "npz": _read_npz, "folder": _read_folder,
           "zip": _read_zip, "tfds": _read_tfds}


def check_x(x, name, which):
    """Raise InputError when ``x`` has no samples, is not numbers, or holds NaN or infinite values."""
    if x is None or len(x) == 0:
        raise InputError(f"'{name}' has no samples in {which}.")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise InputError(f"'{name}': {which} has type {x.dtype}; numbers are needed.")
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.isfinite(x)))
        raise InputError(f"'{name}': {which} contains {bad} NaN or infinite value(s); clean the data.")

