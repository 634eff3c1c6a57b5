"""Published reference figures from the TensorFlow Lite model optimization guide.

The two tables in ``assets/reference/`` are the guide's numbers, measured by
its authors on a Pixel 2 (single big core CPU), not by this project. See
``assets/reference/SOURCES.md`` for where each cell comes from.

pandas is imported inside the loaders so that importing this module stays
cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "assets" / "reference"

DOCUMENT = "TensorFlow Lite model optimization guide"
URL = "https://www.tensorflow.org/lite/performance/model_optimization"
DEVICE = "Pixel 2, single big core CPU"
NA_LABEL = "N/A"

TABLE1_TITLE = "Table 1 Benefits of model quantization for select CNN models"
TABLE2_TITLE = "Table 2 Benefits of model quantization with int16 activations"

TABLE1_NUMERIC = (
    "top1_original",
    "top1_ptq",
    "top1_qat",
    "latency_original_ms",
    "latency_ptq_ms",
    "latency_qat_ms",
    "size_original_mb",
    "size_optimized_mb",
)
TABLE2_NUMERIC = (
    "float32",
    "int8",
    "int16",
    "float32_exact_match",
    "int8_exact_match",
    "int16_exact_match",
)


def table1() -> pd.DataFrame:
    """Loads Table 1, "Benefits of model quantization for select CNN models".

    Returns:
        One row per published model with columns ``model`` (as published),
        ``zoo_model`` (this project's zoo name), ``top1_original``,
        ``top1_ptq``, ``top1_qat`` (fractions), ``latency_original_ms``,
        ``latency_ptq_ms``, ``latency_qat_ms``, ``size_original_mb``,
        ``size_optimized_mb`` (floats) and ``source`` (the guide's web
        address, ``URL``). Cells the guide prints as N/A are NaN, never 0;
        show them as ``NA_LABEL``. ``attrs`` holds the title, document, url,
        device and N/A label.
    """
    return _load("table1.csv", TABLE1_NUMERIC, TABLE1_TITLE)


def table2() -> pd.DataFrame:
    """Loads Table 2, "Benefits of model quantization with int16 activations".

    Returns:
        One row per published model with columns ``model``, ``zoo_model``
        (NaN when not in the zoo), ``metric`` (as published),
        ``lower_is_better`` (True for WER and CER), the exact published cells
        ``float32_text``, ``int8_text``, ``int16_text`` (e.g. ``"6.7%"``,
        ``"88.81(81.23)"``), their leading numbers ``float32``, ``int8``,
        ``int16`` (``"6.7%"`` gives 6.7), the MobileBert Exact match figures
        in parentheses ``float32_exact_match``, ``int8_exact_match``,
        ``int16_exact_match`` (NaN for other models) and ``source``.
        ``attrs`` is as for `table1`.
    """
    return _load("table2.csv", TABLE2_NUMERIC, TABLE2_TITLE)


def _load(filename: str, numeric: tuple[str, ...], title: str) -> pd.DataFrame:
    import pandas as pd

    # Only an empty cell is missing: published text such as "N/A" or "NA"
    # must never be guessed into NaN by pandas' defaults.
    df = pd.read_csv(
        REFERENCE_DIR / filename,
        dtype={column: "float64" for column in numeric},
        keep_default_na=False,
        na_values=[""],
    )
    df["source"] = URL
    df.attrs.update(
        title=title,
        document=DOCUMENT,
        url=URL,
        device=DEVICE,
        na_label=NA_LABEL,
    )
    return df
