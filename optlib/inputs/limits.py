"""Resource limits: what a model or dataset may declare, checked before anything is read.

A file can declare far more than it holds: a 1 MB ``.npz`` of zeros can
declare a 1 GB array, a PNG header can declare 30,000 x 30,000 pixels, a
model's weights file can declare a kernel of gigabytes. Here every such
declaration is read from the headers alone (the ``.npy`` headers inside an
``.npz``, an image's header through Pillow without decoding, HDF5 dataset
shapes through h5py without reading them) and compared with a limit before
the data is loaded. Over a limit: an :class:`~optlib.errors.InputError`
naming the declared size, the limit and the setting that changes it.

The limits are settings (environment variables, in decimal megabytes or
pixels) with defaults derived from this machine's memory:

- ``OPTLIB_MAX_SWEEPS``: how many sweeps run workers at the same time on this
  machine (:mod:`optlib.engine.admission`; default from cores and memory, 1 on
  two cores; 0 for no limit).
- ``OPTLIB_MAX_PAGE_WORK``: how many pages' heavy work processes
  (:mod:`optlib.engine.isolated`: model facts, layer comparison, validation) run at
  once on this machine (default 2; 0 for no limit).
- ``OPTLIB_WORKER_MEMORY_MB``: the memory budget of one worker process
  (default: 75% of the machine's memory shared by the workers of the sweeps
  that may run at once, at least 2,000 MB).
- ``OPTLIB_MAX_DATA_MB``: a dataset's arrays as declared, and its test split
  as the model sees it (float32) (default: a tenth of the worker budget,
  at least 256 MB).
- ``OPTLIB_MAX_WEIGHTS_MB``: a model file's weights as declared (default: a
  tenth of the worker budget, at least 256 MB).
- ``OPTLIB_MAX_IMAGE_PIXELS``: one image's pixels as its header declares
  them (default 50,000,000; Pillow's own bomb limit is 89,478,485).
"""

import os
import re
import threading
import warnings
import zipfile
import zlib
from pathlib import Path

from optlib.errors import InputError
from optlib.units import MB, format_bytes

DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
WORKERS_PER_SWEEP = 2


def _setting(name, default, unit="megabytes"):
    """A number from the environment (``name``), or ``default``; a bad value is an InputError."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{name}={text!r} is not a number; set it to a number of {unit} "
                         "(or unset it for the default).") from None
    if value <= 0:
        raise InputError(f"{name}={text!r} must be more than 0.")
    return value


def machine_memory():
    """Total memory of this machine in bytes."""
    import psutil

    return psutil.virtual_memory().total


def _count(name):
    """A whole number from the environment (``name``; 0: no limit), or None when it is unset."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise InputError(f"{name}={text!r} must be a whole number (0 for no limit).")
    return int(text)


def max_sweeps():
    """How many sweeps may run workers at once on this machine (``OPTLIB_MAX_SWEEPS``; 0: no limit).

    Default: a quarter of the cores and one per 8 GB of memory, at least one (one on two cores), so
    a latency is timed on a quiet machine.
    """
    given = _count("OPTLIB_MAX_SWEEPS")
    if given is None:
        return max(1, min((os.cpu_count() or 1) // 4, int(machine_memory() // (8 * 1024 ** 3))))
    return given


def max_page_work():
    """How many isolated page-work processes may run at once on this machine (``OPTLIB_MAX_PAGE_WORK``)."""
    given = _count("OPTLIB_MAX_PAGE_WORK")
    return 2 if given is None else given


def page_work_deadline():
    """Seconds a page's heavy work (model facts, layer comparison, validation) may take
    (``OPTLIB_PAGE_WORK_DEADLINE_S``, default 1,800: a MobileNetV2 layer comparison takes a few minutes)."""
    return _setting("OPTLIB_PAGE_WORK_DEADLINE_S", 1800.0, "seconds")


def worker_memory():
    """The memory budget of one worker process, in bytes (``OPTLIB_WORKER_MEMORY_MB``)."""
    sweeps = max_sweeps() or 1
    # A fair share of three quarters of the memory, at least 2 GB (TensorFlow's own footprint) but never so
    # much that one sweep's workers together could pass three quarters of the machine.
    share = 0.75 * machine_memory() / (sweeps * WORKERS_PER_SWEEP)
    default = min(max(2_000 * MB, share), 0.75 * machine_memory() / WORKERS_PER_SWEEP)
    return int(_setting("OPTLIB_WORKER_MEMORY_MB", default / MB) * MB)


def float32_cache():
    """The most bytes the shared float32 conversions may keep on disk (``OPTLIB_FLOAT32_CACHE_MB``; default 2 GB)."""
    return int(_setting("OPTLIB_FLOAT32_CACHE_MB", 2_000) * MB)


def max_data():
    """The most bytes a dataset may declare, in bytes (``OPTLIB_MAX_DATA_MB``)."""
    return int(_setting("OPTLIB_MAX_DATA_MB", max(256 * MB, worker_memory() / 10) / MB) * MB)


def max_weights():
    """The most bytes a model file's weights may declare, in bytes (``OPTLIB_MAX_WEIGHTS_MB``)."""
    return int(_setting("OPTLIB_MAX_WEIGHTS_MB", max(256 * MB, worker_memory() / 10) / MB) * MB)


def max_image_pixels():
    """The most pixels one image may declare (``OPTLIB_MAX_IMAGE_PIXELS``)."""
    return int(_setting("OPTLIB_MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS))


def _refuse(name, what, size, limit, setting, verb="declares"):
    raise InputError(f"'{name}' is refused: {what} {verb} {format_bytes(size)}, over the limit of "
                     f"{format_bytes(limit)}. Use a smaller file, or raise the limit with {setting} "
                     "(megabytes) if this machine has the memory.")


# --- Datasets -------------------------------------------------------------------

# numpy reads a .npy header with ast.literal_eval, and CPython 3.11's AST construction keeps its recursion depth in
# state shared by threads: two threads parsing at once (the app checks each session's sweep in a thread of its own)
# can fail one of them with "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905). Twenty
# sweeps started at once did, once in a whole test run. One header at a time here.
_HEADER_LOCK = threading.Lock()


def npz_arrays(path):
    """Return {array name: (shape, dtype)} of an ``.npz`` from its ``.npy`` headers, reading no data.

    ``path`` is a path or a seekable file. Every member counts, as ``np.load`` exposes every one:
    a member without a readable ``.npy`` header is what ``np.load`` would read as raw bytes, so it
    declares its uncompressed size (shape ``(size,)``, dtype ``uint8``).
    """
    import numpy as np
    from numpy.lib import format as npy

    arrays = {}
    with zipfile.ZipFile(path) as bundle:
        for member in bundle.infolist():
            if member.is_dir():
                continue
            key = member.filename.removesuffix(".npy")
            arrays[key] = ((member.file_size,), np.dtype(np.uint8))
            with bundle.open(member) as stream:
                try:
                    version = npy.read_magic(stream)
                    reader = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}.get(version)
                    if reader is None:
                        continue
                    with _HEADER_LOCK:
                        shape, _, dtype = reader(stream, max_header_size=10_000)
                except (ValueError, OSError, EOFError, SyntaxError):
                    continue  # not a readable .npy header: counted by its bytes
            arrays[key] = (tuple(shape), np.dtype(dtype))
    return arrays


def _damaged(name, problem):
    """A zip archive whose members cannot be inflated (corrupt data, an unknown compression method)."""
    return InputError(f"'{name}' could not be read: its zip archive is damaged or uses a compression this "
                      f"program cannot read ({type(problem).__name__}: {str(problem)[:120]}). Save it again "
                      "(numpy.savez or savez_compressed for data, model.save for a model).")


UNREADABLE = (zlib.error, NotImplementedError, RuntimeError)  # RuntimeError: an encrypted member


def declared_bytes(shape, dtype):
    """Bytes of an array of ``shape`` and ``dtype`` (Python integers: no overflow)."""
    count = 1
    for dim in shape:
        count *= int(dim)
    return count * dtype.itemsize


def check_npz(path, name=None):
    """Refuse an ``.npz`` whose arrays declare more than :func:`max_data`; return the declared bytes."""
    name = name or Path(path).name
    try:
        arrays = npz_arrays(path)
    except (zipfile.BadZipFile, OSError, EOFError):
        return 0  # not a zip archive (maybe a lone .npy): the loader says what it is
    except UNREADABLE as problem:
        raise _damaged(name, problem) from None
    limit = max_data()
    total = 0
    for key, (shape, dtype) in arrays.items():
        size = declared_bytes(shape, dtype)
        total += size
        if size > limit:
            _refuse(name, f"array '{key}' (shape {shape}, {dtype})", size, limit, "OPTLIB_MAX_DATA_MB")
    if total > limit:
        _refuse(name, f"its arrays ({', '.join(arrays)}) together", total, limit, "OPTLIB_MAX_DATA_MB", "declare")
    return total


def check_image(stream, name, member):
    """Refuse one image whose header declares more than :func:`max_image_pixels` (nothing is decoded).

    An unreadable image is let through: the loader skips and counts it.
    """
    from PIL import Image

    limit = max_image_pixels()
    try:
        with warnings.catch_warnings():  # Pillow's own bomb warning: this check says it better, or lets it be
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream) as image:  # reads the header only
                width, height = image.size
        size, pixels = f"{width:,} x {height:,} = {width * height:,} pixels", width * height
    except Image.DecompressionBombError as bomb:  # over twice Pillow's own limit: it says how many pixels
        found = re.search(r"\((\d+) pixels\)", str(bomb))
        pixels = int(found.group(1)) if found else limit + 1
        size = f"{pixels:,} pixels" if found else "more pixels than Pillow allows"
    except (OSError, ValueError, SyntaxError, EOFError):
        return
    if pixels > limit:
        raise InputError(f"'{name}' is refused: image '{member}' declares {size}, over the limit of "
                         f"{limit:,} pixels per image. Use smaller images, or raise the limit with "
                         "OPTLIB_MAX_IMAGE_PIXELS.")


def check_image_folder(folder, name=None):
    """Check the header of every image in a folder (and its sub-folders)."""
    name = name or Path(folder).name
    for file in sorted(Path(folder).rglob("*")):
        if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file():
            with open(file, "rb") as stream:
                check_image(stream, name, str(file.relative_to(folder)))


def check_image_zip(path, name=None):
    """Check the header of every image in a zip archive without extracting it."""
    name = name or Path(path).name
    try:
        with zipfile.ZipFile(path) as bundle:
            for member in bundle.infolist():
                if Path(member.filename).suffix.lower() in IMAGE_SUFFIXES and not member.is_dir():
                    with bundle.open(member) as stream:
                        check_image(stream, name, member.filename)
    except (zipfile.BadZipFile, OSError, EOFError):
        return  # the archive checks say what is wrong with it
    except UNREADABLE as problem:
        raise _damaged(name, problem) from None


def check_data(source):
    """Check what a resolved dataset declares before it is read (digits and tfds have nothing to check)."""
    if source.kind == "npz":
        check_npz(source.path, source.name)
    elif source.kind == "folder":
        check_image_folder(source.path, source.name)
    elif source.kind == "zip":
        check_image_zip(source.path, source.name)


def check_prepared(count, input_shape, name):
    """Refuse a test split that, prepared for the model (float32), would exceed :func:`max_data`."""
    size = 4 * count
    for dim in input_shape:
        size *= int(dim)
    limit = max_data()
    if size > limit:
        _refuse(name, f"the test split prepared for the model ({count:,} samples of "
                f"{tuple(input_shape)}, float32)", size, limit, "OPTLIB_MAX_DATA_MB", "would take")


# --- Models ---------------------------------------------------------------------

def h5_weight_bytes(handle):
    """Bytes the datasets of an open HDF5 file declare (shape x dtype; no data is read)."""
    import h5py

    total = 0

    def visit(_, item):
        nonlocal total
        if isinstance(item, h5py.Dataset) and item.shape:
            total += declared_bytes(item.shape, item.dtype)

    handle.visititems(visit)
    return total


def _keras_weight_bytes(path):
    import h5py

    total = 0
    with zipfile.ZipFile(path) as bundle:
        for member in bundle.infolist():
            if member.filename.endswith(".h5"):
                with _seekable(bundle, member) as stream, h5py.File(stream, "r") as handle:
                    total += h5_weight_bytes(handle)
            elif member.filename.endswith(".npz"):  # Keras can store weights as npz too
                with bundle.open(member) as stream:
                    total += sum(declared_bytes(s, d) for s, d in _npz_stream_arrays(stream).values())
    return total


def _seekable(bundle, member):
    """A zip member as h5py reads it: copied to a temporary file first when it is no larger than the weights may
    be, since each seek back inside a compressed member inflates it again from its start (ResNet50's headers
    took 2.2-2.7 s, read in place); a larger member is read in place, never inflated whole."""
    import shutil
    import tempfile

    if member.file_size > max_weights():
        return bundle.open(member)
    copy = tempfile.TemporaryFile(prefix="optlib-weights-")
    try:
        with bundle.open(member) as stream:
            shutil.copyfileobj(stream, copy, 1 << 20)
    except BaseException:
        copy.close()
        raise
    copy.seek(0)
    return copy


def _npz_stream_arrays(stream):
    return npz_arrays(stream)  # a zip member is seekable: read in place, never inflated into memory


def _savedmodel_weight_bytes(folder):
    # The variables' data shards hold every value (TensorFlow checks the index's shapes against them).
    return sum(f.stat().st_size for f in (Path(folder) / "variables").glob("variables.data-*"))


def weight_bytes(path, kind):
    """Bytes the weights of a model file declare, read from headers (``kind``: keras, h5 or savedmodel)."""
    import h5py

    if kind == "h5":
        with h5py.File(path, "r") as handle:
            return h5_weight_bytes(handle)
    if kind == "keras":
        return _keras_weight_bytes(path)
    if kind == "savedmodel":
        return _savedmodel_weight_bytes(path)
    if kind == "tflite":  # the weights are in the file
        return Path(path).stat().st_size
    return 0


def declared_weight_bytes(path, kind):
    """:func:`weight_bytes`, or 0 for a file that cannot be read this way (the loader says what is wrong with it).

    Raises:
        the errors of :data:`UNREADABLE`: a damaged file.
    """
    try:
        return weight_bytes(path, kind)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return 0


def check_model(path, kind, name=None):
    """Refuse a model file whose weights declare more than :func:`max_weights`; return the declared bytes.

    A file that cannot be read this way is let through: the loader says what is wrong with it.
    """
    name = name or Path(path).name
    try:
        size = declared_weight_bytes(path, kind)
    except UNREADABLE as problem:
        raise _damaged(name, problem) from None
    limit = max_weights()
    if size > limit:
        _refuse(name, "the model's weights", size, limit, "OPTLIB_MAX_WEIGHTS_MB", "declare")
    return size


def check_inputs(model, data):
    """Check a resolved model and dataset (:class:`~optlib.inputs.models.ModelSource`,
    :class:`~optlib.inputs.data_refs.DataSource`) before any worker starts. A zipped model is checked
    when it is unpacked, on loading."""
    if model.kind in ("keras", "h5", "savedmodel", "tflite"):
        check_model(model.path, model.kind, model.name)
    check_data(data)
