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


def test_each_recommendation_names_its_source_by_title_and_address(capsys, tmp_path):
    code = main(["recommend", "--data", "representative", "--hardware", "edgetpu", "--priority", "accuracy",
                 "--store", str(tmp_path / "r.sqlite")])
    out = capsys.readouterr().out
    assert code == 0
    assert ".txt" not in out
    sources = [line.strip() for line in out.splitlines() if line.strip().startswith("Source:")]
    assert sources == [
        "Source: ApX Machine Learning: model optimization techniques in TensorFlow",
        "Source: TensorFlow Lite guide: Model optimization (https://www.tensorflow.org/lite/performance/model_optimization)"]


def test_json_carries_each_cited_source_with_title_and_address(capsys, tmp_path):
    assert main(["recommend", "--data", "none", "--hardware", "cpu", "--priority", "size", "--json",
                 "--store", str(tmp_path / "r.sqlite")]) == 0
    text = capsys.readouterr().out
    out = json.loads(text)
    assert ".txt" not in text
    assert {item["source"] for item in out["items"]} == set(out["sources"])
    assert out["sources"]["tflite_guide"] == {
        "title": "TensorFlow Lite guide: Model optimization",
        "url": "https://www.tensorflow.org/lite/performance/model_optimization"}
    assert out["sources"]["apx_optimization_techniques"] == {
        "title": "ApX Machine Learning: model optimization techniques in TensorFlow", "url": None}


def test_the_measured_run_says_whether_it_suits_the_chosen_hardware(capsys, tmp_path):
    from types import SimpleNamespace

    from optlib.engine import schemes
    from optlib.engine.job import Inputs, Result, Spec
    from optlib.engine.store import Store, run_key

    store = Store(tmp_path / "r.sqlite")
    settings = schemes.settings_for("int8")
    spec = Spec(0, "int8", settings, run_key("m-fp", "d-fp", "int8", settings))
    inputs = Inputs(SimpleNamespace(name="digits_cnn", fingerprint="m-fp"), SimpleNamespace(name="digits",
                                                                                           fingerprint="d-fp"))
    metrics = {"accuracy": 0.97, "size_bytes": 64_048, "gzip_bytes": 57_500, "latency_ms": {"median": 0.01},
               "targets": {"micro": {"runs": True, "arena_bytes": 16_880, "flash_bytes": 64_048}}}
    store.finish(store.start(inputs, spec, "host", 1), Result(spec, "ok", None, metrics, b"TFL3" + bytes(100)))
    assert main(["recommend", "--data", "representative", "--hardware", "microcontroller", "--priority", "size",
                 "--model", "digits_cnn", "--store", str(tmp_path / "r.sqlite")]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert "Measured for your hardware: Microcontroller (TFLM): yes (arena 16.9 kB, flash 64.0 kB)" in lines
