"""The LiteRT Quantizer counterpart of each converter recommendation, and when to prefer it.

LiteRT's documentation deprecates post-training quantization during conversion:
convert to float32, then quantize with LiteRT Quantizer. For each scheme the
wizard can recommend, this says which ``lq_`` scheme makes the same kind of
model (the registry's pairing, :func:`optlib.engine.schemes.counterpart`) and
when that is the better choice; training-time schemes have none (LiteRT
Quantizer quantizes a finished float model). Plain data, like the tree.

    >>> counterpart("int8").scheme
    'lq_int8'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from optlib.engine import schemes

_DEPRECATED = "LiteRT's documentation deprecates quantizing during conversion"


@dataclass(frozen=True)
class Counterpart:
    """A LiteRT Quantizer scheme that stands beside a converter scheme.

    Attributes:
        scheme: the lq_ scheme's name; prefer: when to choose it over the converter's (sentences).
    """

    scheme: str
    prefer: str


# When to prefer each LiteRT Quantizer scheme over the converter scheme it pairs with (by the lq_ scheme's name).
PREFER: dict[str, str] = {
    "lq_int8": f"{_DEPRECATED}. It calibrates on the same sample, quantizes the one float32 conversion instead of "
               "converting again (Compare times both), and its recipe can keep single layers at int16 or in float "
               "(lq_int8_selective).",
    "lq_int8_selective": "When the worst layers should stay at int16 activations rather than float, or the recipe "
                         "should be kept as data.",
    "lq_int16x8": f"{_DEPRECATED}. The same int16 activations, by recipe (both fail on models whose depthwise "
                  "layers overflow int16, such as MobileNetV2).",
    "lq_dynamic_int8": f"{_DEPRECATED}. Or lq_weight_int8 for float accuracy and speed with int8 storage, where "
                       "integer kernels do not pay off (x86).",
}

INT4 = Counterpart("lq_weight_int4", "Download size matters most: int4 weights go past int8's 4x (up to 8x "
                                     "smaller than float32); check the accuracy it measures, and try "
                                     "lq_blockwise_int4 if it loses too much.")
_INT4_PRIORITIES = ("size", "download_size")
_INTEGER_ONLY = ("edgetpu", "hexagon", "microcontroller")


def counterpart(scheme: str) -> Counterpart | None:
    """The LiteRT Quantizer counterpart of a converter scheme, or None (training-time schemes, float16)."""
    lq = schemes.counterparts().get(scheme)
    if lq is None:
        return None
    return Counterpart(lq, PREFER.get(lq, f"{_DEPRECATED}: {schemes.get(lq).tradeoff}"))


def extra_for(answers: Mapping[str, str]) -> Counterpart | None:
    """LiteRT Quantizer's int4 weight-only scheme where download size matters most (not on integer-only hardware)."""
    if answers.get("priority") in _INT4_PRIORITIES and answers.get("hardware") not in _INTEGER_ONLY:
        return INT4
    return None
