"""Plain-language explanations of surprising results, from the measured figures.

"Why is this slower?" and "why didn't this shrink?" — each explanation
quotes the numbers of the run and of its float32 baseline, and the reason
the seed documents give.
"""

GUIDE = "000_c3c454f1a6893647.txt"


def explain(row, baseline):
    """Return a list of explanations for one result row compared with its float32 baseline.

    Both are result rows (flat dicts with size_bytes, gzip_bytes, latency_ms, sparsity...).
    Returns an empty list when nothing needs explaining or there is no baseline.
    """
    if not baseline or row.get("status") != "ok" or baseline.get("status") != "ok" or row is baseline:
        return []
    notes = []
    scheme = row["scheme"]
    lat, base_lat = _median(row), _median(baseline)
    size, base_size = row.get("size_bytes"), baseline.get("size_bytes")
    gzip, base_gzip = row.get("gzip_bytes"), baseline.get("gzip_bytes")
    if lat and base_lat and lat > 1.05 * base_lat:
        slower = lat / base_lat
        if scheme == "dynamic":
            notes.append(f"Why is this slower? Dynamic range takes {lat:.3g} ms against {base_lat:.3g} ms for "
                         f"float32 ({slower:.1f}x slower) on this CPU: activations are quantized on the fly at "
                         "every inference, and x86 float kernels are already fast. It still stores weights in "
                         f"{size / base_size:.0%} of the space.")
        elif scheme in ("int16x8", "int8_selective"):
            why = ("TFLite has only reference (unoptimized) kernels for int16 activations"
                   if scheme == "int16x8" else "the layers kept in float convert back and forth between int8 and float")
            notes.append(f"Why is this slower? {lat:.3g} ms against {base_lat:.3g} ms for float32 "
                         f"({slower:.1f}x): {why} [{GUIDE}].")
        else:
            notes.append(f"Why is this slower? {lat:.3g} ms against {base_lat:.3g} ms for float32 ({slower:.1f}x) "
                         "on this machine; quantized kernels pay off most on integer hardware and mobile CPUs.")
    if size and base_size and size > 0.9 * base_size and gzip and base_gzip and gzip < 0.85 * base_gzip:
        what = ("zeroes " + f"{row.get('sparsity', 0):.0%} of the weights" if scheme.startswith("prune")
                else f"leaves at most {row.get('max_unique_weights')} distinct values per kernel")
        notes.append(f"Why didn't this shrink? {scheme} {what}, but TFLite stores them densely: the file is "
                     f"{size / 1e3:.1f} KB against {base_size / 1e3:.1f} KB for float32. Compressed for download "
                     f"it is {gzip / 1e3:.1f} KB against {base_gzip / 1e3:.1f} KB ({1 - gzip / base_gzip:.0%} "
                     f"smaller): pruned and clustered models gain only from compression [{GUIDE}].")
    return notes


def _median(row):
    latency = row.get("latency_ms")
    return latency.get("median") if isinstance(latency, dict) else latency
