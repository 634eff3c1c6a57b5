"""The generated code of a LiteRT Quantizer run: convert to float32, quantize with the recorded recipe, and get
the same file optlib made."""

import ast
import subprocess
import sys

import pytest

from optlib.engine import schemes, sweep
from optlib.engine.store import Store
from optlib.views import codegen
from tests.conftest import save_tiny_digits

LQ = [s.name for s in schemes.list_schemes(backend="litert-quantizer", variants=True)]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny model and a small .npz saved here, quantized by optlib's own sweep with every lq_ scheme."""
    folder = tmp_path_factory.mktemp("codegen_lq")
    model_path, samples = save_tiny_digits(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPTLIB_HOME", str(folder / "home"))
        result = sweep.run(str(model_path), str(samples), "litert-quantizer",
                           {"rep_samples": 64, "runs": 3, "warmup": 1}, Store(folder / "store" / "results.sqlite"))
    return folder, model_path, samples, {row["scheme"]: row for row in result["results"]}


@pytest.mark.parametrize("name", LQ)
def test_code_for_every_lq_scheme_quantizes_with_its_recorded_recipe(made, name):
    row = made[3][name]
    assert row["status"] == "ok", row["error"]
    code = codegen.code_for(row)
    tree = ast.parse(code)
    assigned = [node.value for node in tree.body if isinstance(node, ast.Assign)
                and any(getattr(target, "id", "") == "RECIPE" for target in node.targets)]
    assert ast.literal_eval(assigned[0]) == row["recipe"]["litert_quantizer"]["recipe"]
    assert "from litert_quantizer import quantizer" in code and "qt.load_quantization_recipe(RECIPE)" in code
    assert ("qt.calibrate(" in code) == (schemes.get(name).needs == "representative")
    assert "Needs: tensorflow, tf-keras, litert-quantizer." in code


@pytest.mark.parametrize("name", ["lq_int8", "lq_weight_int4"])
def test_generated_lq_code_makes_a_file_of_the_same_size(made, name):
    folder, model_path, samples, rows = made
    row = rows[name]
    output = folder / f"generated-{name}.tflite"
    script = folder / f"reproduce_{name}.py"
    script.write_text(codegen.code_for(row, model_path=str(model_path), samples_npz=str(samples),
                                       output_path=str(output)))
    done = subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert output.stat().st_size == row["size_bytes"]
    with open(row["tflite_path"], "rb") as made_by_optlib:  # same recipe, same calibration inputs: same bytes
        assert output.read_bytes() == made_by_optlib.read()


def test_a_recipe_that_is_not_plain_data_is_refused(made):
    row = made[3]["lq_int8"]
    bad = {**row, "recipe": {**row["recipe"], "litert_quantizer": {**row["recipe"]["litert_quantizer"],
                                                                     "recipe": [{"regex": float("nan")}]}}}
    with pytest.raises(ValueError, match="not plain data"):
        codegen.code_for(bad)
