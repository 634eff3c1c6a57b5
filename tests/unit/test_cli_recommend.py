"""python -m optlib recommend: the wizard's answers on the command line."""

import json

from optlib.cli import main


def test_edgetpu_with_samples_and_accuracy_recommends_int8_then_qat(capsys, tmp_path):
    code = main(["recommend", "--data", "representative", "--hardware", "edgetpu", "--priority", "accuracy",
                 "--json", "--model", "digits_cnn", "--store", str(tmp_path / "r.sqlite")])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [(i["scheme"], i["role"]) for i in out["items"]] == [("int8", "primary"), ("qat", "follow-up")]
    assert out["measured"] == {}  # nothing stored yet for this model


def test_missing_and_unknown_answers_exit_2_with_accepted_values(capsys):
    assert main(["recommend", "--data", "none"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: Missing answer to 'hardware'; accepted values: cpu, gpu, android_gpu, edgetpu, hexagon, microcontroller."
    assert main(["recommend", "--data", "some"]) == 2
    assert "invalid choice: 'some'" in capsys.readouterr().err
