"""Engine errors in words: what happened and what to try, with the raw message kept for whoever wants it.

    said = failures.in_words("RuntimeError: tflite/kernels/kernel_util.cc:349 "
                             "no_integer_overflow_from_quantization was not true. ... Node number 30 "
                             "(DEPTHWISE_CONV_2D) failed to prepare.")
    said.what    # "TensorFlow Lite refused the DEPTHWISE_CONV_2D layer with int16 activations: ..."
    said.todo    # "Use int8 (int8 activations) or float16, or keep that layer in float ..."
    said.raw     # the message as the engine gave it

:data:`KNOWN` is the table of messages this module knows, each a regular expression over the raw
message and the two sentences (which may name what the expression captured). A message it does not
know is said as it is (its first line, without source-file prefixes): never replaced by a guess.
"""

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Known:
    """One known engine message: where it comes from, how to find it, what it means and what to try."""

    source: str
    pattern: str
    what: str
    todo: str
    short: str = ""  # a few words for a table cell ("needs int8 input; ..."), where the sentence is too long


@dataclass(frozen=True)
class Said:
    """An engine message in words. ``known`` is False when the table had no entry for it; ``short`` is a few
    words for a table cell (the first words of the message when the table has none)."""

    what: str
    todo: str
    raw: str
    known: bool
    short: str = ""

    @property
    def sentence(self):
        """What happened and what to try, as one line."""
        return f"{self.what} {self.todo}".strip()


TFLITE, LQ, LITERT, TFLM = ("TensorFlow Lite kernels", "LiteRT Quantizer", "LiteRT runtime",
                            "TensorFlow Lite for Microcontrollers")

# Ordered: the first entry whose pattern is found in the message says it. Groups named in the pattern
# (``op``, ``type``, ...) fill the braces of the sentences; ``{op}`` falls back to "one".
KNOWN = (
    Known(TFLITE, r"no_integer_overflow_from_quantization",
          "TensorFlow Lite refused {op} layer with int16 activations: with int16 inputs and int8 weights its "
          "sums could overflow the kernel's accumulator.",
          "Use int8 (int8 activations) or float16 for this model, or keep that layer in float "
          "(int8_selective on Layer insight)."),
    Known(TFLITE, r"Didn't find op for builtin opcode '(?P<optype>\w+)'",
          "The LiteRT runtime here has no kernel for the model's {optype} operation.",
          "Choose a scheme that keeps the operation in a type this runtime supports (float32 or int8)."),
    Known(TFLITE, r"Quantization not yet supported for op: '?(?P<optype>\w+)'?",
          "The TensorFlow Lite converter cannot quantize the model's {optype} operation yet.",
          "Use float16 or dynamic range, which leave that operation in float."),
    Known(LQ, r"Model quantization statistics values \(QSVs\) are required",
          "LiteRT Quantizer's recipe needs calibration, and no calibration inputs reached it.",
          "Choose data with test inputs on Model & data, or a dynamic or weight-only lq_ scheme."),
    Known(LQ, r"consumers do not have the same\s+quantization parameters|do not have\s+the same quantization "
              r"parameters even though they share",
          "LiteRT Quantizer's recipe quantizes two readers of one tensor differently.",
          "Use a recipe that treats every operation alike (lq_int8, lq_dynamic_int8)."),
    Known(LQ, r"Unsupported block size",
          "LiteRT Quantizer does not take this block size.",
          "Pick one of the block sizes offered on Optimize."),
    Known(LITERT, r"Unsupported dtype: (?P<type>\w+)",
          "LiteRT's CompiledModel has no {type} tensors, and this model's input is {type}.",
          "Its latency is timed on the LiteRT Interpreter instead: compare it with care against runs timed "
          "on CompiledModel."),
    Known(LITERT, r"only single-input models are timed on CompiledModel",
          "The model has several inputs, and only single-input models are timed on LiteRT's CompiledModel.",
          "Its latency is timed on the LiteRT Interpreter instead: compare it with care against runs timed "
          "on CompiledModel."),
    Known(TFLM, r"Hybrid models are not supported on TFLite Micro",
          "Microcontrollers do not run dynamic-range (hybrid) models: int8 weights with float arithmetic.",
          "Use int8 (full integer) for a microcontroller.",
          "needs full int8; this model is hybrid (int8 weights, float math)"),
    Known(TFLM, r"input->type == kTfLite(?P<first>\w+)(?: \|\| input->type == kTfLite\w+)* was not true",
          "On a microcontroller, {op} layer takes only {types} input, and this model gives it float.",
          "Use int8 (full integer) for a microcontroller.",
          "needs {first} input{at}; this model gives it float"),
    Known(TFLM, r"Didn't find op for builtin opcode|Failed to get registration from op code (?P<optype>\w+)",
          "TensorFlow Lite for Microcontrollers has no kernel for one of the model's operations.",
          "Use a model built from operations microcontrollers support (convolutions, pooling, dense, softmax).",
          "no microcontroller kernel for {optype_or_one}"),
    Known(TFLM, r"Microcontrollers stopped its process on this model",
          "TensorFlow Lite for Microcontrollers stopped (crashed or hung) on this model.",
          "Use int8 (full integer) and a smaller model; the other targets' checks are not affected.",
          "it stopped on this model (crashed or hung)"),
    Known(TFLM, r"Failed to (?:allocate|resize buffer)|Arena size is too small",
          "The model's working memory does not fit the microcontroller arena this check gives it.",
          "Use int8 (a quarter of float32's activations) or a smaller model.",
          "its working memory does not fit the arena"),
)

_OP = re.compile(r"Node (?:number \d+ )?\(?(?P<op>[A-Z][A-Z0-9_]+)\)?(?: \(number \d+\))? failed to prepare")
_TYPES = re.compile(r"input->type == kTfLite(\w+)")
_SOURCE_FILE = re.compile(r"(?:[\w./-]+/)?[\w-]+\.(?:cc|cpp|h|py)(?::\d+)?\s*")


def first_words(raw, limit=300):
    """The raw message's first line without source-file prefixes ("tflite/kernels/kernel_util.cc:349 ")."""
    line = next((line.strip() for line in str(raw).splitlines() if line.strip()), "no message")
    return _SOURCE_FILE.sub("", line)[:limit]


def _values(match, raw):
    """What the sentences' braces name: the failing op, the accepted types and the pattern's own groups."""
    op = _OP.search(raw)
    types = [name.lower() for name in _TYPES.findall(raw)]
    values = {"op": f"the {op['op']}" if op else "one", "at": f" at {op['op']}" if op else "",
              "types": ", ".join(types[:-1]) + " or " + types[-1] if len(types) > 1
              else (types[0] if types else "integer"),
              **{name: (value or "").lower() if name in ("type", "first") else (value or "")
                 for name, value in match.groupdict().items()}}
    values["optype_or_one"] = values.get("optype") or "one of its operations"
    return values


def _fill(text, match, raw):
    text = text.format(**_values(match, raw))
    return text[0].upper() + text[1:]


def in_words(raw):
    """The engine message ``raw`` in words (:class:`Said`), from :data:`KNOWN`; an unknown one as it is."""
    raw = str(raw or "").strip()
    for known in KNOWN:
        match = re.search(known.pattern, raw)
        if match:
            short = known.short.format(**_values(match, raw)) if known.short else ""
            return Said(_fill(known.what, match, raw), _fill(known.todo, match, raw), raw, True,
                        short or brief(first_words(raw)))
    return Said(first_words(raw), "", raw, False, brief(first_words(raw)))


def brief(text, limit=70):
    """``text`` cut to about ``limit`` characters at a word, with "…" where it was cut."""
    text = str(text).strip().rstrip(".")
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:") + " …"


def sentence(raw):
    """What happened and what to try (a known message), or the message as it is (an unknown one)."""
    return in_words(raw).sentence
