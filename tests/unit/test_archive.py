"""Zip archives are checked member by member before anything is written."""

import stat
import zipfile

import pytest

from optlib.inputs import archive
from optlib.errors import InputError


def make_zip(path, members, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as bundle:
        for name, data in members.items():
            if isinstance(data, zipfile.ZipInfo):
                bundle.writestr(data, b"target")
            else:
                bundle.writestr(name, data)
    return path


def test_a_good_archive_extracts(tmp_path):
    path = make_zip(tmp_path / "ok.zip", {"a/one.txt": b"1", "a/b/two.txt": b"22"})
    out = archive.extract(path, tmp_path / "out")
    assert (out / "a" / "b" / "two.txt").read_bytes() == b"22"


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/etc/evil.txt", "C:/evil.txt"])
def test_paths_escaping_the_folder_are_refused_before_writing(tmp_path, name):
    path = make_zip(tmp_path / "slip.zip", {"fine.txt": b"x", name: b"x"})
    with pytest.raises(InputError, match="points outside the archive folder"):
        archive.extract(path, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()


def test_links_are_refused(tmp_path):
    link = zipfile.ZipInfo("link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = make_zip(tmp_path / "link.zip", {"link": link})
    with pytest.raises(InputError, match="member 'link' is a link"):
        archive.check(path)


def test_zip_bomb_is_refused_by_declared_size(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTLIB_ZIP_MAX_TOTAL_MB", "10")
    path = make_zip(tmp_path / "bomb.zip", {f"zeros{i}.bin": bytes(4 << 20) for i in range(4)})
    assert path.stat().st_size < 200_000  # tiny on disk, 16.8 MB unpacked
    with pytest.raises(InputError, match="unpacks to more than 10.00 MB"):
        archive.extract(path, tmp_path / "out")
    monkeypatch.setenv("OPTLIB_ZIP_MAX_MEMBER_MB", "2")
    with pytest.raises(InputError, match="unpacks to 4.19 MB; the limit is 2.00 MB"):
        archive.check(path)


def test_a_header_that_understates_the_size_is_caught_while_writing(tmp_path, monkeypatch):
    path = make_zip(tmp_path / "liar.zip", {"big.bin": bytes(3 << 20)}, zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    size = (3 << 20).to_bytes(4, "little")
    small = (1024).to_bytes(4, "little")
    data = data.replace(size, small)  # both the local header and the central directory now say 1024 bytes
    path.write_bytes(bytes(data))
    monkeypatch.setenv("OPTLIB_ZIP_MAX_MEMBER_MB", "1")
    with pytest.raises(InputError, match="unpacks to more than it declares|is damaged .*; it was not unpacked"):
        archive.extract(path, tmp_path / "out")


def test_too_many_members_and_not_a_zip(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTLIB_ZIP_MAX_MEMBERS", "3")
    path = make_zip(tmp_path / "many.zip", {f"{i}.txt": b"x" for i in range(5)})
    with pytest.raises(InputError, match="has 5 files; the limit is 3"):
        archive.check(path)
    (tmp_path / "fake.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(InputError, match="not a readable zip archive"):
        archive.check(tmp_path / "fake.zip")
