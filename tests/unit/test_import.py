"""`import optlib` and everything a warm sweep touches stays free of TensorFlow."""

import subprocess
import sys


def test_import_optlib_does_not_import_tensorflow():
    code = ("import sys, optlib, optlib.schemes, optlib.sweep, optlib.cli, optlib.store, "
            "optlib.models, optlib.data, optlib.archive, optlib.wizard, optlib.reference\n"
            "heavy = [m for m in ('tensorflow', 'tf_keras', 'keras', 'streamlit') if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
