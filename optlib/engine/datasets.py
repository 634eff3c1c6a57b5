"""Datasets that must be made ready on the server before any worker reads them: tfds downloads.

Engine children have no network (:mod:`optlib.engine.sandbox`), so a tfds dataset is read only where it
is already prepared. When the operator allows downloads (``OPTLIB_TFDS_DOWNLOADS=1``), :func:`prepare`
downloads and prepares a named dataset first, in a child of its own: it may use the network and write the
tfds data folder, and touches no model.
"""

import os

from optlib.errors import InputError
from optlib.inputs import tfds_folder

DEADLINE_S = 3600  # a download of a large dataset takes long; the child is still stopped in the end


def prepare(source, waiting=None):
    """Make a resolved data source ready to read: download and prepare a tfds dataset that is not prepared
    yet, when the operator allows it (nothing for other kinds).

    Raises:
        InputError: not prepared and downloads are off, or the download failed (the reason).
    """
    if source.kind != "tfds" or tfds_folder.tfds_prepared(source.tfds_name):
        return
    if not tfds_folder.tfds_downloads_allowed():
        raise InputError(tfds_folder.tfds_not_prepared(source.tfds_name))
    from optlib.engine import isolated

    folder = tfds_folder.tfds_data_dir()
    os.makedirs(folder, exist_ok=True)
    isolated.call(tfds_folder.prepare_tfds, source.tfds_name, what=f"Downloading tfds dataset '{source.tfds_name}'",
                  waiting=waiting, touches=isolated.Touches(write=(folder,), network=True), deadline_s=DEADLINE_S)
