"""Byte sizes as optlib and the app write them: decimal kB, MB and GB.

One kilobyte is 1,000 bytes and one megabyte 1,000,000, as in the
TensorFlow Lite guide's Table 1, whose published sizes are MB. Every size
shown in optlib, the CLI and the pages goes through this module, so that
"64.4 kB" means the same number of bytes everywhere.

    >>> format_bytes(64_376)
    '64.4 kB'
"""

import math

KB = 1_000
MB = 1_000_000
GB = 1_000_000_000


def format_bytes(size):
    """Return a byte count as a person reads it, in decimal units.

    Args:
        size: a number of bytes; None or NaN when nothing was measured.

    Returns:
        e.g. ``'812 B'``, ``'12.3 kB'``, ``'3.94 MB'``, ``'1.20 GB'``; ``'—'``
        for None or NaN.
    """
    if size is None or (isinstance(size, float) and math.isnan(size)):
        return "—"
    size = float(size)
    if abs(size) < KB:
        return f"{size:.0f} B"
    # The unit is chosen after rounding, so 999,950 bytes read 1.00 MB, not 1000.0 kB.
    if round(abs(size) / KB, 1) < 1000:
        return f"{size / KB:.1f} kB"
    if round(abs(size) / MB, 2) < 1000:
        return f"{size / MB:.2f} MB"
    return f"{size / GB:.2f} GB"
