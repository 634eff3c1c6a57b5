"""`import optlib` and everything a warm sweep touches stays free of TensorFlow."""

import subprocess
import sys


def test_import_optlib_does_not_import_tensorflow():
    code = ("import sys, optlib, optlib.engine.schemes, optlib.engine.sweep, optlib.cli, optlib.engine.store, "
            "optlib.inputs.models, optlib.inputs.data, optlib.inputs.archive, optlib.guide.wizard, optlib.guide.reference\n"
            "heavy = [m for m in ('tensorflow', 'tf_keras', 'keras', 'streamlit') if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
