"""Model files made by an attacker (tests/hostile_models.py): refused by the allowlist, and harmless even without it.

Each file would write a marker file outside its folder when loaded the naive way (a slicing layer calling
tf.io.write_file, a Lambda's bytecode, a module named in the config, a nested model hiding one of these,
a zip that unpacks past the disk budget, ...). The project must refuse every one with one line and exit 2,
write nothing, and the marker must not exist; with the allowlist switched off, the sandbox alone must keep
every marker from being written. A control run without either wall shows the files are real attacks.
"""

import os
import subprocess
import sys

import pytest

import hostile_models
from optlib.engine import isolated, sandbox
from optlib.errors import InputError
from optlib.inputs import allowlist

pytestmark = pytest.mark.skipif(not sandbox.status().available, reason="needs Landlock (Linux 5.13+)")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder, markers = tmp_path_factory.mktemp("hostile"), tmp_path_factory.mktemp("markers")
    made = hostile_models.make_all(folder, markers)
    assert not any(marker.exists() for _, marker in made.values())
    return made


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "optlib", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})}, check=False)


@pytest.mark.parametrize("name", list(hostile_models.CATALOGUE))
def test_each_hostile_file_is_refused_with_one_line_and_writes_nothing(name, hostile, digits_npz, tmp_path):
    path, marker = hostile[name]
    store = tmp_path / "results.sqlite"
    done = _cli("sweep", "--model", str(path), "--data", str(digits_npz), "--schemes", "float32", "--store",
                str(store))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and "refused" in lines[0] and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert not marker.exists()
    if store.exists():  # refused before anything was stored (most before the store was even opened)
        from optlib.engine.store import Store

        assert Store(store).rows() == []


def test_a_refusal_names_the_layer_where_it_sits_and_what_it_reaches(hostile):
    with pytest.raises(allowlist.Refused) as refused:
        allowlist.check(hostile["keras_slicing_write_file"][0], "keras")
    assert "(SlicingOpLambda)" in str(refused.value) and "calls tf.io.write_file, which can reach files" in str(
        refused.value)
    with pytest.raises(allowlist.Refused, match=r"layer '.*' \(Lambda\) in .* runs Python code"):
        allowlist.check(hostile["keras_nested_model_hiding"][0].parent / "keras_lambda_bytecode.keras", "keras")
    with pytest.raises(InputError, match="unpacks to 3.00 GB"):
        allowlist.check(hostile["keras_zip_extra_member_bomb"][0], "keras")


def _load_each(paths):
    """In one child: load every file (no allowlist) and say what each load did."""
    from optlib.inputs import models

    said = {}
    for name, path in paths.items():
        try:
            models.load(models.resolve(path))
            said[name] = "loaded"
        except Exception as problem:  # noqa: BLE001 — each file's own failure, recorded
            said[name] = f"{type(problem).__name__}: {str(problem)[:400]}"
    return said


def _markers_after_loading(hostile, monkeypatch, sandboxed):
    hostile_models.clear_markers(hostile)
    monkeypatch.setenv(allowlist.SKIP, "1")
    if not sandboxed:
        monkeypatch.setenv("OPTLIB_SANDBOX_OFF", "1")
    paths = {name: str(path) for name, (path, _) in hostile.items() if name != "keras_zip_extra_member_bomb"}
    files = tuple(paths.values()) + (str(next(iter(hostile.values()))[0].parent),)
    said = isolated.call(_load_each, paths, what="Loading hostile files", touches=isolated.Touches(files=files))
    written = {name for name, (_, marker) in hostile.items() if marker.exists()}
    hostile_models.clear_markers(hostile)
    return written, said


def test_the_sandbox_alone_keeps_every_hostile_file_from_writing(hostile, monkeypatch):
    written, said = _markers_after_loading(hostile, monkeypatch, sandboxed=True)
    assert written == set(), said
    # The attacks did run and were stopped by the kernel, not by a load that failed for another reason first.
    for name, naive in hostile_models.NAIVE.items():
        if naive is True:
            assert "the sandbox stopped it" in said[name], (name, said[name])


def test_without_the_sandbox_and_the_allowlist_the_files_do_write(hostile, monkeypatch):
    """The control: the catalogue's files are real attacks (so the test above can fail)."""
    written, said = _markers_after_loading(hostile, monkeypatch, sandboxed=False)
    expected = {name for name, naive in hostile_models.NAIVE.items() if naive is True}
    assert expected - written == set(), said


def test_the_issues_savedmodel_with_a_lambda_writes_nothing_through_a_sweep_without_the_allowlist(
        hostile, digits_npz, tmp_path):
    """The real path (a CLI sweep, its workers) with the allowlist off: the sandbox holds the Lambda that ran."""
    path, marker = hostile["savedmodel_zip_lambda_compact_json"]
    done = _cli("sweep", "--model", str(path), "--data", str(digits_npz), "--schemes", "float32", "--store",
                str(tmp_path / "r.sqlite"), env={allowlist.SKIP: "1"})
    assert done.returncode in (0, 2), done.stderr[-2000:]
    assert not marker.exists()
