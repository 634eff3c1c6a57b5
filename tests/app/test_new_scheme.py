"""A new scheme is one registry entry (plus its builder or technique): everything else finds it.

The throwaway schemes below are registered at run time by a plugin module
(named in ``$OPTLIB_PLUGINS``, as an operator would); no other file knows
them: a post-training scheme with its own builder, a training scheme whose
technique is one row of the technique table (a plain fine-tune) and one
entry, and a LiteRT Quantizer scheme that is one entry naming an existing
LiteRT Quantizer recipe. The CLI lists them, a sweep runs them in worker
processes and stores them, the Optimize page draws their checkboxes (and a
setting), Compare shows their rows, and codegen writes the script that
reproduces each.
"""

import ast
import json
import subprocess
import sys

import pytest
from apphelpers import texts

from optlib.engine import schemes
from optlib.views import codegen

PLUGIN = '''
from optlib.engine import schemes
from optlib.engine.convert import convert
from optlib.engine.schemes import training
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


def plain_fine_tune(model, run):
    copy = run.copy(model)
    run.record({"step": "plain_fit"}, run.fit(copy, "plain fine-tuning"))
    return copy


training.register_technique("plain_fit", training.Technique(
    "plain fine-tuning", plain_fine_tune,
    steps={"plain_fit": training.Step("A plain fine-tune, nothing wrapped", lambda step: ["fine_tune(model)"])}))

schemes.register(schemes.Scheme(
    name="throwaway_tuned", family="training-time", title="Throwaway fine-tune",
    summary="A training technique only a test knows.", needs="training",
    builder="optlib.engine.schemes.training:build", params=schemes.TRAINING_PARAMS, techniques=("plain_fit",),
    recipe={"optimizations": ["DEFAULT"]}, color="#654321"))

schemes.register(schemes.Scheme(
    name="throwaway_lq", family="post-training", title="Throwaway LiteRT Quantizer recipe",
    summary="A LiteRT Quantizer scheme only a test knows.", needs="nothing",
    builder="optlib.engine.schemes.lq:build", variant_of="dynamic", backend="litert-quantizer",
    recipe={"base": "weight_only_wi8_afp32"}, takes=schemes.FLOAT_GRAPHS, color="#abcdef"))
'''
NEW = ("throwaway", "throwaway_tuned", "throwaway_lq")


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
    from optlib.engine.schemes import training

    __import__("throwaway_plugin")
    yield schemes.get("throwaway")
    for name in NEW:
        schemes.unregister(name)
    training.TECHNIQUES.pop("plain_fit", None)
    sys.modules.pop("throwaway_plugin", None)


def _cli(*args):
    done = subprocess.run([sys.executable, "-m", "optlib", *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_registered_scheme_is_listed_run_stored_drawn_and_compared(app, home, throwaway, tiny_model_path,
                                                                   digits_npz):
    listed = {row["name"]: row for row in json.loads(_cli("schemes", "--json"))}
    assert listed["throwaway"]["settings"]["tag"] == "plain"
    assert set(NEW) <= set(listed)

    out = _cli("sweep", "--model", str(tiny_model_path), "--data", str(digits_npz), "--schemes",
               "float32," + ",".join(NEW), "--runs", "3", "--epochs", "1", "--param", "train_samples=64",
               "--param", "throwaway.tag=seen", "--json")
    rows = {row["scheme"]: row for row in json.loads(out)["results"]}
    for name in NEW:
        assert rows[name]["status"] == "ok", rows[name]["error"]
    assert rows["throwaway"]["settings"]["tag"] == "seen" and rows["throwaway"]["recipe"]["tag"] == "seen"
    assert 0 < rows["throwaway"]["size_bytes"] < rows["float32"]["size_bytes"]  # dynamic-range weights
    tuned = rows["throwaway_tuned"]["recipe"]  # the technique's step, then the entry's converter recipe
    assert [step["step"] for step in tuned["training"]] == ["plain_fit"]
    assert tuned["converter"] == {"optimizations": ["DEFAULT"]}
    assert rows["throwaway_lq"]["recipe"]["litert_quantizer"]["base"] == "weight_only_wi8_afp32"
    assert rows["throwaway_lq"]["size_bytes"] < rows["float32"]["size_bytes"]  # int8 weights
    stored = {row["scheme"]: row for row in json.loads(_cli("results", "--json"))}
    assert set(stored) == {"float32", *NEW}

    for name, says in (("throwaway_tuned", "fine_tune(model)"), ("throwaway_lq", "qt.load_quantization_recipe(RECIPE)")):
        code = codegen.code_for(stored[name])
        ast.parse(code)
        assert says in code, name
    assert "# 1. A plain fine-tune, nothing wrapped." in codegen.code_for(stored["throwaway_tuned"])

    at = app("optimize.py")
    assert not at.exception
    for name in NEW:
        at.checkbox(key=f"optimize_scheme_{name}").check().run()
        assert not at.exception
    assert at.text_input(key="optimize_param_tag").value == "plain"
    assert "Throwaway settings" in texts(at.markdown)

    at = app("compare.py")
    assert not at.exception
    assert set(NEW) <= set(at.dataframe[0].value["Scheme"])


def test_a_plugin_that_cannot_load_is_named_in_one_line(monkeypatch):
    monkeypatch.setenv("OPTLIB_PLUGINS", "no_such_plugin_module")
    done = subprocess.run([sys.executable, "-m", "optlib", "schemes"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: The scheme plugin 'no_such_plugin_module' (OPTLIB_PLUGINS) could not be loaded: "
        "ModuleNotFoundError: No module named 'no_such_plugin_module'. Fix the plugin or take it out of "
        "OPTLIB_PLUGINS."]
