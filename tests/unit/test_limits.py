"""Sizes are checked from headers before anything is loaded (optlib/inputs/limits.py).

Each hostile file (tests/hostile.py) declares far more than it holds; it must be refused with the
declared size, the limit and the setting that changes it — and the loader that would expand it is
never called. Time and peak memory of each refusal are in the benchmark (bench/run.py --only limits).
"""

import time
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from optlib.errors import InputError
from optlib.inputs import data_refs, limits, models, preparation, readers
from tests import hostile
from tests.conftest import build_tiny_model


@pytest.fixture(scope="session")
def big_npz(tmp_path_factory):
    return hostile.compressible_npz(tmp_path_factory.mktemp("hostile") / "big.npz")


@pytest.fixture(scope="session")
def big_png(tmp_path_factory):
    return hostile.huge_png(tmp_path_factory.mktemp("hostile") / "big.png")


@pytest.fixture(scope="session")
def model_28():
    return build_tiny_model(input_shape=(28, 28, 1))


@pytest.fixture
def never_loaded(monkeypatch):
    """Make the loaders that would expand a file fail the test if they are reached."""
    def reached(*args, **kwargs):
        raise AssertionError("the file was read before its sizes were checked")

    monkeypatch.setattr(np, "load", reached)
    monkeypatch.setattr(models, "_keras_load", reached)
    monkeypatch.setattr(readers, "_read_images", reached)


def test_a_compressible_npz_declaring_a_gigabyte_is_refused_from_its_headers(big_npz, model_28, never_loaded,
                                                                             monkeypatch):
    assert big_npz.stat().st_size < 10_000_000
    monkeypatch.setenv("OPTLIB_MAX_DATA_MB", "500")
    with pytest.raises(InputError) as refused:
        preparation.load(data_refs.resolve(str(big_npz)), model_28)
    message = str(refused.value)
    assert "'big.npz' is refused" in message and "x_test" in message
    assert "declares 1.00 GB" in message and "limit of 500.00 MB" in message and "OPTLIB_MAX_DATA_MB" in message


def test_the_default_data_limit_comes_from_the_machine_and_refuses_a_gigabyte(big_npz, monkeypatch):
    for name in ("OPTLIB_MAX_DATA_MB", "OPTLIB_WORKER_MEMORY_MB", "OPTLIB_MAX_SWEEPS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(limits, "machine_memory", lambda: 25 * 10**9)
    monkeypatch.setattr(limits.os, "cpu_count", lambda: 2)
    assert limits.max_sweeps() == 1
    assert limits.worker_memory() == 9_375_000_000 and limits.max_data() == 937_500_000
    with pytest.raises(InputError, match="declares 1.00 GB, over the limit of 937.50 MB"):
        limits.check_npz(big_npz)
    # A small machine: a sweep's two workers together never pass three quarters of its memory.
    monkeypatch.setattr(limits, "machine_memory", lambda: 4 * 10**9)
    assert limits.worker_memory() == 1_500_000_000
    monkeypatch.setattr(limits, "machine_memory", lambda: 2 * 10**9)
    assert limits.worker_memory() == 750_000_000 and limits.max_data() == 256_000_000  # the data floor holds


@pytest.mark.parametrize("packed", ["folder", "zip"])
def test_an_image_whose_header_declares_30000_by_30000_pixels_is_refused(tmp_path, big_png, model_28, never_loaded,
                                                                        packed):
    root = hostile.image_folder_with(tmp_path / "images", big_png)
    ref = root
    if packed == "zip":
        ref = tmp_path / "images.zip"
        with zipfile.ZipFile(ref, "w") as bundle:
            for file in root.rglob("*.png"):
                bundle.write(file, "images/" + str(file.relative_to(root)))
    with pytest.raises(InputError) as refused:
        preparation.load(data_refs.resolve(str(ref)), model_28)
    message = str(refused.value)
    assert "big.png' declares 900,000,000 pixels" in message
    assert "limit of 50,000,000 pixels per image" in message and "OPTLIB_MAX_IMAGE_PIXELS" in message


def test_an_image_under_pillows_own_bomb_limit_is_refused_with_its_width_and_height(tmp_path, monkeypatch):
    png = hostile.huge_png(tmp_path / "wide.png", width=12_000, height=5_000)
    monkeypatch.setenv("OPTLIB_MAX_IMAGE_PIXELS", "1000000")
    with pytest.raises(InputError, match=r"declares 12,000 x 5,000 = 60,000,000 pixels, over the limit of 1,000,000"):
        limits.check_image_folder(hostile.image_folder_with(tmp_path / "images", png))


@pytest.mark.parametrize("maker,name", [(hostile.big_keras, "big.keras"), (hostile.big_h5, "big.h5")])
def test_a_model_whose_weights_declare_more_than_the_limit_is_refused(tmp_path, never_loaded, monkeypatch,
                                                                      maker, name):
    path = maker(tmp_path / name)
    assert path.stat().st_size < 100_000
    monkeypatch.setenv("OPTLIB_MAX_WEIGHTS_MB", "1000")
    with pytest.raises(InputError) as refused:
        models.load(models.resolve(str(path)))
    message = str(refused.value)
    assert f"'{name}' is refused: the model's weights declare 3.60 GB, over the limit of 1.00 GB" in message
    assert "OPTLIB_MAX_WEIGHTS_MB" in message
    zipped = tmp_path / "model.zip"  # the same inside a zip: checked after the (size-checked) extraction
    with zipfile.ZipFile(zipped, "w") as bundle:
        bundle.write(path, name)
    with pytest.raises(InputError, match="weights declare 3.60 GB"):
        models.load(models.resolve(str(zipped)))


def test_a_model_within_the_limit_is_counted_from_its_weights(tiny_model_path):
    size = limits.check_model(tiny_model_path, "keras")
    model = models.load(models.resolve(str(tiny_model_path)))
    weights = sum(w.numpy().nbytes for w in model.weights)
    assert weights <= size <= 3 * weights + 100  # the file also keeps Adam's two slots per weight


def test_a_test_split_that_would_grow_past_the_limit_for_the_model_is_refused(digits_npz, monkeypatch):
    model = build_tiny_model(input_shape=(224, 224, 3))
    monkeypatch.setenv("OPTLIB_MAX_DATA_MB", "100")  # 360 digits as 224x224x3 float32: 217 MB
    with pytest.raises(InputError, match=r"the test split prepared for the model \(360 samples of \(224, 224, 3\), "
                                         r"float32\) would take 216.76 MB, over the limit of 100.00 MB"):
        preparation.load(data_refs.resolve(str(digits_npz)), model)


def test_a_bad_limit_setting_says_what_to_write(monkeypatch, digits_npz):
    monkeypatch.setenv("OPTLIB_MAX_DATA_MB", "lots")
    with pytest.raises(InputError, match="OPTLIB_MAX_DATA_MB='lots' is not a number"):
        limits.check_npz(digits_npz)


def test_the_cli_refuses_a_hostile_model_with_exit_2_and_one_line(tmp_path):
    path = hostile.big_keras(tmp_path / "big.keras")
    done = subprocess.run([sys.executable, "-m", "optlib", "sweep", "--model", str(path), "--data", "digits",
                           "--schemes", "float32", "--store", str(tmp_path / "s.sqlite")],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**__import__("os").environ, "OPTLIB_MAX_WEIGHTS_MB": "1000"})
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "weights declare 3.60 GB, over the limit of 1.00 GB" in done.stderr


def test_a_member_without_the_npy_suffix_is_counted_too(tmp_path, monkeypatch):
    # np.load exposes 'x_test' from a member named plain "x_test" as well: it must not slip past the check.
    monkeypatch.setenv("OPTLIB_MAX_DATA_MB", "1")
    path = tmp_path / "renamed.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        with bundle.open("x_test", "w") as member:
            np.lib.format.write_array(member, np.zeros((1000, 1000), np.float32))  # 4 MB declared, compresses
        with bundle.open("y_test.npy", "w") as member:
            np.lib.format.write_array(member, np.zeros(1000, np.int64))
    assert np.load(path)["x_test"].shape == (1000, 1000)  # numpy reads it, suffix or not
    assert limits.npz_arrays(path)["x_test"] == ((1000, 1000), np.dtype(np.float32))
    with pytest.raises(InputError, match=r"array 'x_test' \(shape \(1000, 1000\), float32\) declares 4.00 MB"):
        limits.check_npz(path)


def test_a_member_that_is_no_array_counts_by_its_inflated_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTLIB_MAX_DATA_MB", "1")
    path = tmp_path / "raw.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("notes", bytes(3_000_000))  # np.load would read these 3 MB as raw bytes
    with pytest.raises(InputError, match="declares 3.00 MB"):
        limits.check_npz(path)


def test_a_damaged_archive_is_refused_with_a_message_not_a_traceback(tmp_path):
    good = tmp_path / "good.npz"
    np.savez_compressed(good, x_test=np.arange(100_000, dtype=np.float32), y_test=np.zeros(100_000))
    content = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as bundle:
        first = bundle.infolist()[0]
    start = first.header_offset + 30 + len(first.filename.encode()) + len(first.extra)
    content[start:start + 64] = bytes(64)  # the deflate stream of the first member, zeroed
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(bytes(content))
    with pytest.raises(InputError, match="'damaged.npz' could not be read: its zip archive is damaged"):
        limits.check_npz(damaged)


def test_a_keras_file_holding_an_npz_is_read_in_place(tmp_path, monkeypatch):
    # An uncompressed inner .npz of zeros, deflated in the .keras: inflating the member whole would take 40 MB
    # (a gigabyte, for a hostile file). Opened as a zip in place, it is streamed in bounded chunks
    # (zipfile seeks by reading at most 16 MiB at a time), never held whole.
    inner = tmp_path / "weights.npz"
    np.savez(inner, kernel=np.zeros((10_000, 1000), np.float32))  # 40 MB, stored
    model = tmp_path / "model.keras"
    with zipfile.ZipFile(model, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("config.json", "{}")
        bundle.write(inner, "model.weights.npz")
    assert model.stat().st_size < 100_000
    inflated = []
    original = zipfile.ZipExtFile.read
    monkeypatch.setattr(zipfile.ZipExtFile, "read", lambda self, n=-1: inflated.append(len(data := original(self, n)))
                        or data)
    assert limits.weight_bytes(model, "keras") == 40_000_000
    assert max(inflated) <= 16 * 2 ** 20 < 40_000_000, max(inflated)


def test_the_float32_cache_keeps_the_most_recently_used_conversions_within_its_limit(tmp_path, monkeypatch):
    from optlib.engine import float32_cache

    monkeypatch.setenv("OPTLIB_HOME", str(tmp_path))
    monkeypatch.setenv("OPTLIB_FLOAT32_CACHE_MB", "0.25")  # room for two of these 100 kB "conversions"
    monkeypatch.setattr(float32_cache, "_tf_version", lambda: "test")
    made = []
    for name in ("a", "b", "a", "c"):  # "a" is used again before "c" is made
        content, _ = float32_cache.float32_bytes(name, lambda n=name: made.append(n) or n.encode() * 100_000)
        assert content == name.encode() * 100_000
        time.sleep(0.05)  # past the file system's timestamp tick (several ms on older kernels): uses are ordered
    assert made == ["a", "b", "c"]  # the second "a" was served from the cache
    left = sorted(p.read_bytes()[:1] for p in (tmp_path / "cache" / "float32").glob("*/*.tflite"))
    assert left == [b"a", b"c"]  # "b", the least recently used, went to keep the folder under 250 kB
    assert len(list((tmp_path / "cache" / "float32").glob("*/*.json"))) == 2


def test_a_models_calibrations_go_with_its_last_conversion(tmp_path, monkeypatch):
    from optlib.engine import float32_cache

    monkeypatch.setenv("OPTLIB_HOME", str(tmp_path))
    monkeypatch.setattr(float32_cache, "_tf_version", lambda: "test")
    for name in ("a", "b"):
        float32_cache.float32_bytes(name, lambda n=name: n.encode() * 100_000)
        (float32_cache.folder_for(name) / "calibration-0123.npz").write_bytes(b"qsvs")
        time.sleep(0.05)
    float32_cache.prune(float32_cache.root(), 150_000)  # room for one: "a", the older, goes
    assert not list(float32_cache.folder_for("a").glob("*.tflite"))
    assert not (float32_cache.folder_for("a") / "calibration-0123.npz").exists()
    assert (float32_cache.folder_for("b") / "calibration-0123.npz").exists()  # its conversion stays, and so do they


def test_a_worker_waiting_for_anothers_conversion_does_its_other_work_meanwhile(tmp_path, monkeypatch):
    """Another process converting the model (its lock held) does not leave this one idle: ``meanwhile`` runs
    first, then the conversion is read back, not made again. With the lock free, nothing runs meanwhile."""
    import hashlib
    import threading

    from filelock import FileLock

    from optlib.engine import float32_cache

    monkeypatch.setenv("OPTLIB_HOME", str(tmp_path))
    monkeypatch.setattr(float32_cache, "_tf_version", lambda: "test")
    content, facts = float32_cache.float32_bytes("free", lambda: b"made", meanwhile=lambda: pytest.fail("no wait"))
    assert content == b"made" and not facts["reused"]
    free = hashlib.sha256(b"free|tensorflow test").hexdigest()[:24] + ".lock"
    FileLock(str(float32_cache.folder_for("free") / free)).acquire(timeout=0).lock.release()  # given back

    key = hashlib.sha256(b"busy|tensorflow test").hexdigest()[:24] + ".lock"  # the conversion's lock
    folder = float32_cache.folder_for("busy")
    held, order = threading.Event(), []

    def other_worker():  # holds the lock until this one's meanwhile has run, then leaves the conversion
        with FileLock(str(folder / key)):
            held.set()
            while "meanwhile" not in order:
                time.sleep(0.01)
            (folder / key.replace(".lock", ".tflite")).write_bytes(b"theirs")
            (folder / key.replace(".lock", ".json")).write_text('{"convert_s": 1.5}')

    thread = threading.Thread(target=other_worker)
    thread.start()
    held.wait(5)
    content, facts = float32_cache.float32_bytes("busy", lambda: order.append("made") or b"ours",
                                                 meanwhile=lambda: order.append("meanwhile"))
    thread.join(5)
    assert order == ["meanwhile"] and content == b"theirs" and facts == {"convert_s": 1.5, "reused": True}


def test_npy_headers_are_parsed_one_at_a_time_across_threads(digits_npz, monkeypatch):
    """numpy parses a header with ast, which CPython 3.11 cannot do in two threads at once (gh-106905: "AST
    constructor recursion depth mismatch", seen once with twenty sweeps checked at the same moment). A parser that
    waits inside shows whether two threads were ever in it together."""
    import threading

    from numpy.lib import format as npy

    inside, most, guard = [0], [0], threading.Lock()
    real = npy.read_array_header_1_0

    def slow_header(*args, **kwargs):
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.01)  # the GIL released: another thread would come in now
        try:
            return real(*args, **kwargs)
        finally:
            with guard:
                inside[0] -= 1

    monkeypatch.setattr(npy, "read_array_header_1_0", slow_header)
    threads = [threading.Thread(target=limits.npz_arrays, args=(digits_npz,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert most[0] == 1
