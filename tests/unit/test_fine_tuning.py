"""Fine-tuning in a job: the toolkit's wrappers run as they are written, not rewritten by AutoGraph, and make the
same model as when AutoGraph rewrote them (optlib._keras._call_the_toolkit_unconverted)."""

from optlib._keras import TOOLKIT
from optlib.engine import job, schemes, sweep
from optlib.engine.schemes.base import Job


def test_the_toolkit_runs_unconverted_and_makes_the_same_model_as_when_autograph_rewrote_it(
        tiny_model_path, digits_npz, monkeypatch):
    from tensorflow.python.autograph.core import config
    from tensorflow.python.autograph.impl import conversion
    from tensorflow.python.autograph.pyct import cache, transpiler

    from optlib._keras import tfmot

    tfmot()
    # Every technique in one scheme (pruning, then clustering that keeps the zeros, then QAT that keeps both),
    # built as a sweep's job builds it, on the model and data a job loads.
    inputs, [spec] = sweep.plan(str(tiny_model_path), str(digits_npz), "prune_cluster_qat",
                                {"rep_samples": "16", "epochs": "1", "train_samples": "96"})
    loaded = job.Context(inputs)
    rewritten = []  # the module of every function AutoGraph was asked to rewrite (cached or not)
    rewrite = transpiler.PyToPy.transform_function

    def spy(self, fn, user_context):
        rewritten.append(fn.__module__)
        return rewrite(self, fn, user_context)

    monkeypatch.setattr(transpiler.PyToPy, "transform_function", spy)

    def fine_tuned():
        rewritten.clear()
        built = schemes.get(spec.scheme).build_function()(Job(spec.scheme, loaded.model, loaded.data, spec.settings))
        return built.tflite, sorted({name for name in rewritten if name.startswith(TOOLKIT)})

    model, toolkit_rewritten = fine_tuned()
    assert rewritten and toolkit_rewritten == []  # tf_keras's training step is still rewritten; no toolkit code is

    # As before: no rule for the toolkit, and none of AutoGraph's decisions to leave a function as it is remembered.
    monkeypatch.setattr(config, "CONVERSION_RULES", tuple(rule for rule in config.CONVERSION_RULES
                                                          if not rule.matches(TOOLKIT)))
    monkeypatch.setattr(conversion, "_ALLOWLIST_CACHE", cache.UnboundInstanceCache())
    model_before, toolkit_rewritten = fine_tuned()
    assert "tensorflow_model_optimization.python.core.quantization.keras.quantize_wrapper" in toolkit_rewritten
    assert contents(model) == contents(model_before)


def contents(tflite):
    """What a .tflite computes: its operators (code and which tensors) and every buffer's bytes (weights,
    quantization tables). Not the tensors' names: the second fine-tune in a process numbers its layers on."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(tflite, 0)
    graphs = [model.Subgraphs(g) for g in range(model.SubgraphsLength())]
    operators = [(op.OpcodeIndex(), op.InputsAsNumpy().tolist(), op.OutputsAsNumpy().tolist())
                 for graph in graphs for op in (graph.Operators(i) for i in range(graph.OperatorsLength()))]
    tensors = [(t.Buffer(), t.Type(), t.ShapeAsNumpy().tolist()) for graph in graphs
               for t in (graph.Tensors(i) for i in range(graph.TensorsLength()))]
    buffers = [model.Buffers(b).DataAsNumpy().tobytes() if model.Buffers(b).DataLength() else b""
               for b in range(model.BuffersLength())]
    return operators, tensors, buffers
