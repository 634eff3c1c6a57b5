"""A new scheme is one registry entry plus its builder: everything else finds it.

The throwaway scheme below is registered at run time by a plugin module (named
in ``$OPTLIB_PLUGINS``, as an operator would); no other file knows it. The CLI
lists it, a sweep runs it in worker processes and stores it, the Optimize page
draws its checkbox and its setting, and Compare shows its row.
"""

import json
import subprocess
import sys

import pytest
from apphelpers import texts

from optlib.engine import schemes

PLUGIN = '''
from optlib.engine import schemes
from optlib.engine.convert import convert
from optlib.engine.schemes.base import Built


def build(job):
    job.progress(0.1, "converting")
    recipe = {"optimizations": ["DEFAULT"]}
    return Built(convert(job.model, recipe), {"converter": recipe, "tag": job.settings["tag"]}, job.model)


schemes.register(schemes.Scheme(
    "throwaway", "post-training", "Throwaway scheme", "A scheme only a test knows.", "nothing",
    "throwaway_plugin:build",
    (schemes.Param("tag", "plain", "a word the run records", label="Tag", group="Throwaway settings"),),
    color="#123456"))
'''


@pytest.fixture
def throwaway(tmp_path, monkeypatch):
    """Register the throwaway scheme here and in every process started from here."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "throwaway_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", str(folder))
    monkeypatch.setenv("OPTLIB_PLUGINS", "throwaway_plugin")
    monkeypatch.delitem(sys.modules, "throwaway_plugin", raising=False)
    __import__("throwaway_plugin")
    yield schemes.get("throwaway")
    schemes.unregister("throwaway")
    sys.modules.pop("throwaway_plugin", None)


def _cli(*args):
    done = subprocess.run([sys.executable, "-m", "optlib", *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_registered_scheme_is_listed_run_stored_drawn_and_compared(app, home, throwaway, tiny_model_path,
                                                                   digits_npz):
    listed = {row["name"]: row for row in json.loads(_cli("schemes", "--json"))}
    assert listed["throwaway"]["settings"]["tag"] == "plain"

    out = _cli("sweep", "--model", str(tiny_model_path), "--data", str(digits_npz), "--schemes",
               "float32,throwaway", "--runs", "3", "--param", "throwaway.tag=seen", "--json")
    rows = {row["scheme"]: row for row in json.loads(out)["results"]}
    assert rows["throwaway"]["status"] == "ok", rows["throwaway"]["error"]
    assert rows["throwaway"]["settings"]["tag"] == "seen" and rows["throwaway"]["recipe"]["tag"] == "seen"
    assert 0 < rows["throwaway"]["size_bytes"] < rows["float32"]["size_bytes"]  # dynamic-range weights
    stored = {row["scheme"] for row in json.loads(_cli("results", "--json"))}
    assert stored == {"float32", "throwaway"}

    at = app("optimize.py")
    assert not at.exception
    at.checkbox(key="optimize_scheme_throwaway").check().run()
    assert not at.exception
    assert at.text_input(key="optimize_param_tag").value == "plain"
    assert "Throwaway settings" in texts(at.markdown)

    at = app("compare.py")
    assert not at.exception
    assert "throwaway" in set(at.dataframe[0].value["Scheme"])


def test_a_plugin_that_cannot_load_is_named_in_one_line(monkeypatch):
    monkeypatch.setenv("OPTLIB_PLUGINS", "no_such_plugin_module")
    done = subprocess.run([sys.executable, "-m", "optlib", "schemes"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: The scheme plugin 'no_such_plugin_module' (OPTLIB_PLUGINS) could not be loaded: "
        "ModuleNotFoundError: No module named 'no_such_plugin_module'. Fix the plugin or take it out of "
        "OPTLIB_PLUGINS."]
