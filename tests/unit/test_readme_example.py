"""The README's notebook example runs as written and prints measured figures."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_notebook_example_runs(tmp_path, seed_zoo):
    text = README.read_text()
    code = re.search(r"<!-- notebook-example -->\n```python\n(.*?)```\n<!-- /notebook-example -->", text, re.S)
    assert code, "README has no notebook example between the markers"
    seed_zoo(tmp_path)  # the digits_cnn this run trained once
    done = subprocess.run([sys.executable, "-c", code.group(1)], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OPTLIB_HOME": str(tmp_path)}, cwd=README.parent)  # as the README says
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    status, size, median = lines[0].split()
    assert status == "ok" and int(size) > 0 and float(median) > 0
    assert "int8" in done.stdout and "speedup" in done.stdout
    assert any(line.startswith(("int8 meets", "dynamic meets", "No candidate")) for line in lines)
    assert "['int8', 'qat']" in done.stdout
    assert lines[-1].endswith(" 3")  # the three runs of the sweep, served to the search from the store
