"""Shared fixtures: an isolated data folder, a tiny model and datasets made by the tests.

No test touches the network or the developer's own data/ folder.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

# Before anything imports optlib: keep stores, artifacts and cached zoo models out of data/. With several
# test processes (pytest -n 3), each has a data folder of its own: its stores and queues are its own.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OPTLIB_HOME"] = tempfile.mkdtemp(prefix=f"optlib-tests-{os.environ['PYTEST_XDIST_WORKER']}-")
os.environ.setdefault("OPTLIB_HOME", tempfile.mkdtemp(prefix="optlib-tests-"))
SESSION_HOME = os.environ["OPTLIB_HOME"]

# With several test processes (pytest -n 3) each test file runs whole in one of them, so its module fixtures
# are made once, and these files share one: those that start a local Ray (one at a time on a machine), the
# two that read the session's real sweep (swept_home, made once), the two that read every scheme's sweep of the
# built-in model (every_scheme, made once), and the two browser tests that read the store of three models (one
# app server serves them).
TOGETHER = {"ray": ("tests/unit/test_ray_",),
            "every_scheme": ("tests/unit/test_digits_cnn.py", "tests/unit/test_sweep_all_schemes.py"),
            "swept_home": ("tests/app/test_pages.py", "tests/app/test_insight_page.py"),
            "three_models": ("tests/e2e/test_e2e_many_models.py", "tests/e2e/test_e2e_room.py")}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a file that takes a minute or more (large zoo models, every scheme "
                            "end to end, Ray clusters, crash and timeout recovery); the README's test command runs "
                            "them, the quick lane leaves them out")
    config.addinivalue_line("markers", "e2e: real server and real browser (Chromium + Playwright)")


# The files (and groups of files that share a test process, :data:`TOGETHER`) from the longest to the shortest,
# as measured with --durations: each test process takes the next when it is almost done, so the long ones start
# first and the short ones, left for the end, even out when the processes finish. The rest follow in collection
# order. Each process is given two at the start (the 1st and 4th, 2nd and 5th, 3rd and 6th), so Ray's files (three
# minutes) come sixth, after Keras Applications: by then the built-in model is trained and shared (seed_zoo).
LONGEST_FIRST = ("tests/e2e/test_e2e_room.py", "tests/e2e/test_e2e_many_models.py", "tests/e2e/test_e2e_tables.py",
                 "tests/unit/test_keras_applications.py", "tests/unit/test_keras3_sweeps.py",
                 "tests/unit/test_reliability.py", "tests/unit/test_ray_", "tests/unit/test_any_model.py",
                 "tests/unit/test_digits_cnn.py", "tests/unit/test_sweep_all_schemes.py",
                 "tests/e2e/test_e2e_dashboard.py", "tests/app/test_pages.py", "tests/app/test_insight_page.py",
                 "tests/e2e/test_e2e_formats.py", "tests/unit/test_codegen.py", "tests/e2e/test_e2e_insight.py",
                 "tests/unit/test_starter.py", "tests/e2e/test_e2e_wizard.py", "tests/unit/test_model_formats.py",
                 "tests/unit/test_hostile_models.py", "tests/unit/test_codegen_lq.py", "tests/e2e/test_e2e_regression.py",
                 "tests/unit/test_executor.py", "tests/app/test_model_data.py", "tests/unit/test_models_data.py",
                 "tests/unit/test_bundle.py", "tests/app/test_tables_page.py", "tests/unit/test_zoo_slow.py")


# Files whose tests take a minute or more together (measured with --durations): marked slow as a whole, so the
# quick lane (-m "not slow and not e2e") keeps the tests that answer in seconds.
SLOW_FILES = ("tests/unit/test_keras_applications.py", "tests/unit/test_zoo_slow.py", "tests/unit/test_ray_",
              "tests/unit/test_reliability.py", "tests/unit/test_any_model.py", "tests/unit/test_digits_cnn.py",
              "tests/unit/test_sweep_all_schemes.py", "tests/unit/test_keras3_sweeps.py", "tests/unit/test_load.py",
              "tests/unit/test_codegen.py", "tests/unit/test_executor.py", "tests/unit/test_models_data.py",
              "tests/unit/test_worker_memory.py", "tests/unit/test_search.py", "tests/unit/test_latency_turns.py",
              "tests/unit/test_lq.py", "tests/unit/test_model_formats.py", "tests/unit/test_readme_example.py",
              "tests/app/test_model_data.py", "tests/app/test_export_bundle.py", "tests/app/test_new_scheme.py")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith(SLOW_FILES):
            item.add_marker(pytest.mark.slow)

    def rank(item):
        path = item.nodeid.split("::", 1)[0]
        return next((i for i, starts in enumerate(LONGEST_FIRST) if path.startswith(starts)), len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: within a file, and among the rest, collection order


def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's file-by-file scheduling, with the files of :data:`TOGETHER` sent to one test process, in
    collection order (not xdist's default of the files with the most tests first: many quick tests are not long)."""
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False

    class Together(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            path = nodeid.split("::", 1)[0]
            return next((name for name, starts in TOGETHER.items() if path.startswith(starts)), path)

    return Together(config, log)


def _trained_digits_cnn(tmp_path_factory):
    """The built-in digits CNN's two files: ``(shared, own)``. ``shared`` is where the run keeps it once a test
    process has trained it (the run's temporary folder with several test processes, a single one's own otherwise);
    ``own`` is the file this test process's data folder keeps it in, as a sweep there would."""
    from optlib.inputs import models

    run_temp = tmp_path_factory.getbasetemp()  # a test process's own; with several, their parent is the run's
    shared = (run_temp.parent if os.environ.get("PYTEST_XDIST_WORKER") else run_temp) / "trained-digits-cnn.keras"
    return shared, Path(SESSION_HOME) / "zoo" / f"{models.DIGITS_CNN_RECIPE}.keras"


def _copy_once(source, target):
    """Copy ``source`` to ``target`` where the first is there and the second is not, whole or not at all: a
    process that dies mid-copy leaves no half file."""
    import shutil

    if source.is_file() and not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        shutil.copyfile(source, partial)
        os.replace(partial, target)


@pytest.fixture(scope="session")
def seed_zoo(tmp_path_factory):
    """A function that gives a data folder the built-in digits CNN already trained, as an earlier sweep there
    would have left it in its zoo folder.

    The model is trained once per run, the way a first sweep trains it, by the first test process that needs it
    (the others wait for it and copy it: with the same seed they would train the same model); each data folder
    made by a test then copies it instead of training the same model again.
    """
    from filelock import FileLock

    from optlib.inputs import models

    shared, own = _trained_digits_cnn(tmp_path_factory)
    previous, os.environ["OPTLIB_HOME"] = os.environ["OPTLIB_HOME"], SESSION_HOME
    try:
        with FileLock(f"{shared}.lock"):
            _copy_once(shared, own)
            models.load(models.resolve("digits_cnn"))  # trains it (into ``own``) only where no process has yet
            _copy_once(own, shared)
    finally:
        os.environ["OPTLIB_HOME"] = previous

    def seed(home):
        (home / "zoo").mkdir(parents=True, exist_ok=True)
        (home / "zoo" / own.name).write_bytes(own.read_bytes())
        return home

    return seed


@pytest.fixture(autouse=True)
def trained_digits_cnn_once_trained(tmp_path_factory):
    """The test process's own data folder gets the built-in digits CNN as soon as any test process of the run
    has trained it (:func:`seed_zoo`), so a later sweep of it here does not train the same model again.
    Before then, and in a run where no test asks for it, a sweep trains it as it always would."""
    _copy_once(*_trained_digits_cnn(tmp_path_factory))


@pytest.fixture(scope="session")
def every_scheme(tmp_path_factory):
    """Every scheme and variant of the registry that a Keras model takes, swept once on the built-in model
    (digits_cnn, trained, on the built-in digits) with the default settings but 10 timed invokes: its acceptance
    figures (test_digits_cnn.py) and every entry end to end (test_sweep_all_schemes.py).

    Returns a namespace: ``overrides``, ``result``, ``rows`` (by scheme), ``events`` (the progress events),
    ``store``, and ``workers``, the sweep's worker processes, kept for later sweeps of the same tests.
    """
    from types import SimpleNamespace

    from optlib.engine import schemes, sweep
    from optlib.engine.executors import LocalWorkers
    from optlib.engine.store import Store

    selection = [name for name in schemes.names(variants=True) if not schemes.refusal(name, "keras")]
    overrides = {"runs": "10"}
    store, events = Store(tmp_path_factory.mktemp("every-scheme") / "results.sqlite"), []
    with LocalWorkers() as workers:
        result = sweep.run("digits_cnn", "digits", ",".join(selection), overrides, store, progress=events.append,
                           executor=workers)
        yield SimpleNamespace(overrides=overrides, result=result, events=events, store=store,
                              rows={row["scheme"]: row for row in result["results"]}, workers=workers)


@pytest.fixture(scope="module")
def keras_():
    """tf_keras, seeded once per test file (the models a file makes are the same every run)."""
    from optlib._keras import keras

    k = keras()
    k.utils.set_random_seed(0)
    return k


@pytest.fixture(scope="module")
def workers():
    """A test file's sweep worker processes, kept from one of its sweeps to the next as a search keeps them:
    TensorFlow loads once per worker, and a model and data the worker has already read are not read again.
    Pass it as ``sweep.run(..., executor=workers)``."""
    from optlib.engine.executors import LocalWorkers

    with LocalWorkers() as kept:
        yield kept


@pytest.fixture(scope="session")
def digits_arrays():
    """Real handwritten digits (scikit-learn), 8x8, values 0-16, split 80/20."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.images.astype(np.float32), digits.target, test_size=0.2, random_state=0, stratify=digits.target)
    return x_train, y_train, x_test, y_test


@pytest.fixture(scope="session")
def digits_npz(tmp_path_factory, digits_arrays):
    x_train, y_train, x_test, y_test = digits_arrays
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def save_tiny_digits(folder):
    """A tiny CNN (untrained, seed 0) and the first 600 handwritten digits split 480/120, saved in ``folder`` as
    ``tiny.keras`` and ``samples.npz``, as a user would have them. Returns (model path, .npz path)."""
    from sklearn.datasets import load_digits

    from optlib._keras import keras

    digits = load_digits()
    x, y = digits.images[:600].astype(np.float32), digits.target[:600]
    samples = folder / "samples.npz"
    np.savez(samples, x_train=x[:480], y_train=y[:480], x_test=x[480:], y_test=y[480:])
    k = keras()
    k.utils.set_random_seed(0)
    model = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Conv2D(8, 3, activation="relu"),
                          k.layers.Flatten(), k.layers.Dense(16, activation="relu"),
                          k.layers.Dense(10, activation="softmax")])
    model_path = folder / "tiny.keras"
    model.save(model_path)
    return model_path, samples


def build_tiny_model(layers=None, input_shape=(8, 8, 1), classes=10):
    """Return a small compiled-free Keras model (tf_keras)."""
    from optlib._keras import keras

    k = keras()
    k.utils.set_random_seed(0)
    body = layers if layers is not None else [
        k.layers.Conv2D(8, 3, activation="relu"),
        k.layers.Flatten(),
        k.layers.Dense(32, activation="relu"),
    ]
    return k.Sequential([k.layers.Input(input_shape), *body, k.layers.Dense(classes, activation="softmax")])


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, digits_arrays):
    """A tiny CNN on 8x8 digits, trained for a few seconds, saved as .keras."""
    x_train, y_train, _, _ = digits_arrays
    model = build_tiny_model()
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x_train[..., None] / 16.0, y_train, epochs=8, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    model.save(path, save_format="keras_v3")  # not HDF5, whatever tf_keras last loaded in this thread
    return path
