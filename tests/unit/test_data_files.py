"""optlib.inputs.readers: a bad file is an InputError, a bug in the code is not disguised as one.

The readers are called directly (no model, no TensorFlow): what matters here
is which exceptions count as "the file is bad".
"""

import os
import pickle
import zipfile

import numpy as np
import pytest
from PIL import Image

from optlib.inputs import data_refs, readers
from optlib.errors import InputError

NOT_READABLE = "is not a readable .npz file"


def read_npz(path):
    return readers.READERS["npz"](data_refs.resolve(str(path)), None)


@pytest.fixture
def good_npz(tmp_path):
    path = tmp_path / "good.npz"
    rng = np.random.default_rng(0)
    np.savez_compressed(path, x_test=rng.random((50, 8, 8)).astype(np.float32), y_test=np.arange(50) % 10)
    return path


def _bad_files(folder, good):
    """Bad .npz files, each with the exception np.load raises for it (numpy 2)."""
    content = good.read_bytes()
    files = {
        "empty": b"",  # EOFError
        "truncated": content[:len(content) // 2],  # zipfile.BadZipFile: no central directory
        "cut at the end": content[:-100],  # zipfile.BadZipFile
        "plain text": b"these are not the arrays you are looking for\n" * 20,  # ValueError (taken for a pickle)
    }
    corrupt = bytearray(content)
    start = content.index(b"x_test.npy") + 200  # inside the compressed x_test member
    corrupt[start:start + 64] = os.urandom(64)
    files["corrupt member"] = bytes(corrupt)  # zlib.error or zipfile.BadZipFile (bad CRC)
    np.save(folder / "array.npy", np.zeros(3))
    files["a .npy renamed"] = (folder / "array.npy").read_bytes()  # np.load returns an array, not an archive
    with zipfile.ZipFile(folder / "members.zip", "w") as bundle:
        bundle.writestr("x_test.npy", b"not an npy member")
        bundle.writestr("y_test.npy", b"nor this")
    files["members that are not arrays"] = (folder / "members.zip").read_bytes()  # np.load returns bytes
    return files


def test_bad_npz_files_are_input_errors(tmp_path, good_npz):
    for name, content in _bad_files(tmp_path, good_npz).items():
        path = tmp_path / f"{name.replace(' ', '_')}.npz"
        path.write_bytes(content)
        with pytest.raises(InputError, match=NOT_READABLE):
            read_npz(path)
        print(name, "-> InputError")


def test_pickled_objects_are_refused_with_their_own_message(tmp_path):
    np.savez(tmp_path / "objects.npz", x_test=np.array([{"a": 1}] * 3, dtype=object), y_test=np.arange(3))
    with pytest.raises(InputError, match="holds pickled objects, which are refused"):
        read_npz(tmp_path / "objects.npz")
    (tmp_path / "pickle.npz").write_bytes(pickle.dumps({"x_test": [1, 2, 3]}))
    with pytest.raises(InputError, match="pickles are refused"):
        read_npz(tmp_path / "pickle.npz")


def test_a_good_npz_still_reads(good_npz):
    raw = read_npz(good_npz)
    assert raw.x_test.shape == (50, 8, 8) and raw.x_train is None


def test_a_bug_while_reading_an_npz_is_not_called_a_bad_file(good_npz, monkeypatch):
    def bug(self, key):
        raise TypeError("a programming error, not a bad file")

    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", bug)
    with pytest.raises(TypeError, match="a programming error"):
        read_npz(good_npz)


def _folder(root):
    for label in range(2):
        (root / f"class_{label}").mkdir(parents=True)
        for index in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * index + label, np.uint8)).save(root / f"class_{label}" / f"{index}.png")
    return root


def test_unreadable_images_are_skipped_and_counted(tmp_path):
    root = _folder(tmp_path / "images")
    good = (root / "class_0" / "0.png").read_bytes()
    (root / "class_0" / "text.png").write_bytes(b"not an image")
    (root / "class_0" / "truncated.png").write_bytes(good[:len(good) // 2])
    (root / "class_1" / "empty.jpg").write_bytes(b"")
    raw = readers._read_images(root, "images", None)
    assert "skipped 3 unreadable or oversized image(s)" in raw.notes
    assert len(raw.x_test) + len(raw.x_train) == 6


def test_a_bug_while_reading_images_is_not_counted_as_unreadable_images(tmp_path, monkeypatch):
    root = _folder(tmp_path / "images")

    def bug(self, *args, **kwargs):
        raise TypeError("a programming error, not a bad image")

    monkeypatch.setattr(Image.Image, "convert", bug)
    with pytest.raises(TypeError, match="a programming error"):
        readers._read_images(root, "images", None)
