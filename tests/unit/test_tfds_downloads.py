"""tfds datasets a visitor names: read where prepared on the server, downloaded only where the operator allows
(OPTLIB_TFDS_DOWNLOADS=1), and then by the one engine child that has a network."""

import socket

import pytest

from optlib.engine import datasets, isolated
from optlib.errors import InputError
from optlib.inputs import data_refs, tfds_folder


def test_a_dataset_is_prepared_when_its_info_file_is_in_the_tfds_folder(tmp_path):
    assert not tfds_folder.tfds_prepared("mnist", tmp_path)
    (tmp_path / "mnist" / "3.0.1").mkdir(parents=True)
    assert not tfds_folder.tfds_prepared("mnist", tmp_path)  # a download cut short leaves folders, not the info file
    (tmp_path / "mnist" / "3.0.1" / "dataset_info.json").write_text("{}")
    assert tfds_folder.tfds_prepared("mnist", tmp_path) and tfds_folder.tfds_prepared("mnist:3.0.1", tmp_path)


def test_an_unprepared_dataset_is_refused_unless_downloads_are_allowed(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.delenv("OPTLIB_TFDS_DOWNLOADS", raising=False)
    source = data_refs.resolve("tfds:mnist")
    with pytest.raises(InputError, match="'mnist' is not prepared on this server .*OPTLIB_TFDS_DOWNLOADS=1"):
        datasets.prepare(source)
    monkeypatch.setenv("OPTLIB_TFDS_DOWNLOADS", "1")
    with pytest.raises(InputError, match="'mnist' could not be downloaded and prepared"):  # no network in tests
        datasets.prepare(source)


def test_downloads_run_in_a_child_that_has_a_network_and_no_other_child_has_one():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert isolated.call(_connect, port, what="Connecting") == "PermissionError"
        assert isolated.call(_connect, port, what="Connecting", touches=isolated.Touches(network=True)) == "ok"


def _connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return "ok"
    except OSError as problem:
        return type(problem).__name__
