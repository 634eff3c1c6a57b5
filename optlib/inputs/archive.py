"""Safe extraction of uploaded zip archives.

Every member is checked before anything is written: no absolute paths, no
``..``, no links, a member-count limit, and per-member and total size limits
(zip bombs declare small compressed sizes but huge uncompressed ones). The
limits can be changed with environment variables, in (decimal) megabytes / counts:
``OPTLIB_ZIP_MAX_MEMBER_MB``, ``OPTLIB_ZIP_MAX_TOTAL_MB``, ``OPTLIB_ZIP_MAX_MEMBERS``.
"""

import os
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from optlib.errors import InputError
from optlib.units import MB, format_bytes


def limits():
    """Return (max member bytes, max total bytes, max members) from the environment."""
    return (int(float(os.environ.get("OPTLIB_ZIP_MAX_MEMBER_MB", 1000)) * MB),
            int(float(os.environ.get("OPTLIB_ZIP_MAX_TOTAL_MB", 2000)) * MB),
            int(os.environ.get("OPTLIB_ZIP_MAX_MEMBERS", 20000)))


def check(path):
    """Check every member of a zip archive; return the list of members.

    Raises:
        InputError: not a zip, or a member that could escape the folder or is too big.
    """
    max_member, max_total, max_members = limits()
    try:
        with zipfile.ZipFile(path) as bundle:
            members = bundle.infolist()
    except (zipfile.BadZipFile, OSError):
        raise InputError(f"'{Path(path).name}' is not a readable zip archive.") from None
    if len(members) > max_members:
        raise InputError(f"'{Path(path).name}' has {len(members)} files; the limit is {max_members}.")
    total = 0
    for member in members:
        name = member.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
            raise InputError(f"'{Path(path).name}' is refused: member '{name}' points outside the archive folder.")
        if stat.S_ISLNK(member.external_attr >> 16):
            raise InputError(f"'{Path(path).name}' is refused: member '{name}' is a link.")
        if member.file_size > max_member:
            raise InputError(f"'{Path(path).name}' is refused: member '{name}' unpacks to "
                             f"{format_bytes(member.file_size)}; the limit is {format_bytes(max_member)}.")
        total += member.file_size
        if total > max_total:
            raise InputError(f"'{Path(path).name}' is refused: it unpacks to more than "
                             f"{format_bytes(max_total)}.")
    return members


def extract(path, folder):
    """Check, then extract a zip archive into ``folder``; return the folder.

    Sizes are enforced again while writing, in case the header lied.
    """
    members = check(path)
    max_member, max_total, _ = limits()
    folder = Path(folder)
    written = 0
    try:
        with zipfile.ZipFile(path) as bundle:
            for member in members:
                target = folder / member.filename
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                size = 0
                with bundle.open(member) as source, open(target, "wb") as sink:
                    for chunk in iter(lambda: source.read(1 << 20), b""):
                        size += len(chunk)
                        written += len(chunk)
                        if size > max_member or written > max_total:
                            raise InputError(f"'{Path(path).name}' is refused: it unpacks to more than it declares.")
                        sink.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as problem:
        raise InputError(f"'{Path(path).name}' is damaged ({str(problem)[:80]}); it was not unpacked.") from None
    return folder


def extract_model_zip(path, folder):
    """Extract a zipped model and return the path of the model inside.

    The archive may hold a SavedModel folder (with ``saved_model.pb``) or one
    ``.keras`` / ``.h5`` / ``.tflite`` file.
    """
    try:
        extract(path, folder)
    except zipfile.BadZipFile:
        raise InputError(f"'{Path(path).name}' is not a readable zip archive.") from None
    saved = sorted(p.parent for p in Path(folder).rglob("saved_model.pb"))
    if saved:
        return saved[0]
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".keras", ".h5", ".hdf5", ".tflite"))
    if len(files) == 1:
        return files[0]
    raise InputError(f"'{Path(path).name}' holds no SavedModel folder and no single .keras, .h5 or .tflite file.")
