"""Engine errors said in words (optlib.analysis.failures): every known message, as the engine gives it."""

import pytest

from optlib.analysis import failures

# One message per entry of failures.KNOWN, as the engine wrote it (from stored runs and the libraries' sources),
# with words the sentence must contain.
EXAMPLES = [
    ("RuntimeError: tflite/kernels/kernel_util.cc:349 no_integer_overflow_from_quantization was not true.Node "
     "number 30 (DEPTHWISE_CONV_2D) failed to prepare.",
     ["refused the DEPTHWISE_CONV_2D layer with int16 activations", "Use int8"]),
    ("RuntimeError: Didn't find op for builtin opcode 'GELU' version '2'. An older version of this builtin might "
     "be supported.", ["no kernel for the model's GELU operation"]),
    ("error: Quantization not yet supported for op: 'CUMSUM'.", ["cannot quantize the model's CUMSUM operation"]),
    ("RuntimeError: Model quantization statistics values (QSVs) are required for the input recipe. This can be "
     "obtained by running calibration on sample dataset.", ["needs calibration"]),
    ("RuntimeError: The tensor conv1 consumers do not have the same quantization parameters. Please modify your "
     "quantization recipe to make sure the two tensors have the same quantization settings.",
     ["two readers of one tensor"]),
    ("ValueError: Unsupported block size: 48", ["does not take this block size"]),
    ("ValueError: Unsupported dtype: int16", ["CompiledModel has no int16 tensors", "input is int16",
                                              "timed on the LiteRT Interpreter instead"]),
    ("ValueError: only single-input models are timed on CompiledModel", ["several inputs"]),
    ("Hybrid models are not supported on TFLite Micro.; Node CONV_2D (number 2) failed to prepare with status 1",
     ["dynamic-range (hybrid)", "Use int8 (full integer)"]),
    ("input->type == kTfLiteInt8 || input->type == kTfLiteInt16 || input->type == kTfLiteUInt8 was not true.; "
     "Node DEQUANTIZE (number 0) failed to prepare with status 1",
     ["the DEQUANTIZE layer takes only int8, int16 or uint8 input", "Use int8 (full integer)"]),
    ("Failed to get registration from op code CUSTOM; Failed starting model allocation.",
     ["no kernel for one of the model's operations"]),
    ("TensorFlow Lite for Microcontrollers stopped its process on this model (it was killed by SIGABRT)",
     ["crashed or hung"]),
    ("Failed to resize buffer. Requested: 2097152, available 1048576, missing: 1048576",
     ["does not fit the microcontroller arena"]),
]


def test_every_known_message_has_an_example():
    found = [next(i for i, known in enumerate(failures.KNOWN) if failures.in_words(raw).known
                  and failures.re.search(known.pattern, raw)) for raw, _ in EXAMPLES]
    assert sorted(set(found)) == list(range(len(failures.KNOWN)))


@pytest.mark.parametrize("raw, words", EXAMPLES, ids=[raw[:40] for raw, _ in EXAMPLES])
def test_a_known_message_is_said_in_words_with_the_raw_message_kept(raw, words):
    said = failures.in_words(raw)
    assert said.known and said.raw == raw
    assert said.what and said.todo and said.what[0].isupper()
    for word in words:
        assert word in said.sentence
    for internal in ("kTfLite", ".cc", "RuntimeError", "ValueError", "{", "}"):
        assert internal not in said.sentence


def test_an_unknown_message_is_said_as_it_is_without_source_file_names():
    said = failures.in_words("RuntimeError: tensorflow/lite/kernels/conv.cc:123 something new happened\nmore")
    assert not said.known and said.todo == ""
    assert said.sentence == "RuntimeError: something new happened"


def test_a_sentence_of_our_own_stays_as_it_is():
    own = "the sweep was stopped before this scheme started"
    assert failures.sentence(own) == own and failures.sentence(None) == "no message"
