"""The wire between a sandboxed child and its parent: plain data round-trips, anything that could carry code is refused.

No pickle is ever involved: a hostile child's bytes decode to plain values or a WireError.
"""

import collections
import dataclasses
import enum
import math
import os
import pathlib
import pickle
import threading
from dataclasses import dataclass, field
from multiprocessing import Pipe

import msgpack
import numpy as np
import pandas as pd
import pytest

from optlib.engine import job, wire

# The extension codes wire.py uses (fixed: they are the wire format).
TUPLE, SET, FROZENSET, ARRAY, SCALAR, PATH, BIGINT, DATACLASS, FRAME = range(1, 10)


@wire.register
@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str = ""


@wire.register
@dataclass(frozen=True)
class Shape:
    points: tuple
    meta: dict = field(default_factory=dict)
    derived: int = field(default=0, init=False)


@dataclass(frozen=True)
class Unregistered:
    x: int


class Colour(enum.IntEnum):
    RED = 1


class Name(str):
    pass


def roundtrip(value):
    return wire.decode(wire.encode(value))


def realistic_result():
    """A Result as a worker sends it back: nested metrics, numpy figures, a large artifact."""
    spec = job.Spec(3, "int8", {"threads": 1, "runs": 20, "warmup": 3, "shape": (1, 28, 28, 1)}, "k-abc")
    metrics = {"size_bytes": 123_456, "gzip_bytes": 98_765, "threads": 1, "classes": 10,
               "recipe": {"converter": "tflite", "optimizations": ["DEFAULT"], "representative": 100},
               "data_recipe": {"scale": "0..1", "split": (0.8, 0.2)}, "trained": True,
               "accuracy": np.float64(0.9731), "top5": np.float32(0.998),
               "latency_ms": {"median": 0.41, "p90": 0.52, "load_1m": 1.25, "runs": [0.4, 0.41, 0.43]},
               "targets": {"gpu": {"ok": True, "why": ""}, "mcu": {"ok": False, "why": "op not supported",
                                                                  "arena_bytes": None}},
               "sparsity": 0.0, "max_unique_weights": 256, "kernels": [{"name": "conv", "shape": (3, 3, 1, 8)}],
               "confusion": np.arange(100, dtype=np.int64).reshape(10, 10), "build_s": 1.5, "total_s": 2.25,
               "peak_rss_mb": 812.3}
    return job.Result(spec, "ok", None, metrics, os.urandom(1 << 20), 1_700_000_000.5, 1_700_000_002.75,
                      "host-1", 4242)


# Round trips ---------------------------------------------------------------------------------------------------


def test_a_realistic_result_round_trips_exactly():
    result = realistic_result()
    back = roundtrip(result)
    assert type(back) is job.Result and type(back.spec) is job.Spec
    assert back.spec == result.spec and back.spec.settings["shape"] == (1, 28, 28, 1)
    assert back.artifact == result.artifact and type(back.artifact) is bytes
    assert (back.status, back.error, back.started_at, back.finished_at, back.host, back.pid) == (
        "ok", None, 1_700_000_000.5, 1_700_000_002.75, "host-1", 4242)
    metrics = back.metrics
    assert type(metrics["accuracy"]) is np.float64 and metrics["accuracy"] == np.float64(0.9731)
    assert type(metrics["top5"]) is np.float32 and metrics["top5"] == np.float32(0.998)
    assert np.array_equal(metrics["confusion"], result.metrics["confusion"])
    assert metrics["confusion"].dtype == np.int64
    assert metrics["data_recipe"]["split"] == (0.8, 0.2) and isinstance(metrics["data_recipe"]["split"], tuple)
    assert metrics["kernels"][0]["shape"] == (3, 3, 1, 8)
    assert metrics["latency_ms"]["runs"] == [0.4, 0.41, 0.43]
    assert metrics["targets"]["mcu"] == {"ok": False, "why": "op not supported", "arena_bytes": None}
    assert {k: v for k, v in metrics.items() if k != "confusion"} == {
        k: v for k, v in result.metrics.items() if k != "confusion"}

    failed = job.gave_up(result.spec, "timeout", "stopped after 60 s", host="h", pid=1)
    assert roundtrip(failed) == failed
    event = job.Event(2, "int8", "running", 0.5, "measuring", 7, "h")
    assert roundtrip(("event", event)) == ("event", event)


def test_plain_values_tuples_lists_and_nested_containers():
    value = {
        "none": None, "t": True, "f": False, "int": -7, "big": 2**64 + 1, "negbig": -(2**70), "u64": 2**64 - 1,
        "float": 1.5, "nan": math.nan, "inf": -math.inf, "str": "héllo ✓", "empty": "", "bytes": b"\x00\xff",
        "list": [1, [2, [3]]], "tuple": (1, (2, 3), [4, (5,)]), "empty_tuple": (), "one": (None,),
        "set": {1, "a", (2, 3)}, "frozen": frozenset({1, 2}), "path": pathlib.Path("/tmp/a b/model.tflite"),
        "nested": {"a": {"b": {"c": [{"d": (1, 2)}]}}},
    }
    back = roundtrip(value)
    assert math.isnan(back.pop("nan"))
    value.pop("nan")
    assert back == value
    assert type(back["tuple"]) is tuple and type(back["tuple"][1]) is tuple and type(back["tuple"][2]) is list
    assert type(back["tuple"][2][1]) is tuple and type(back["list"][1]) is list
    assert type(back["set"]) is set and type(back["frozen"]) is frozenset
    assert isinstance(back["path"], pathlib.Path) and type(back["big"]) is int
    assert roundtrip([1, 2]) == [1, 2] and type(roundtrip((1, 2))) is tuple


def test_dict_keys_of_several_types_round_trip():
    value = {1: "int", 2.5: "float", None: "none", (1, "a"): "tuple", frozenset({3}): "frozenset", "s": "str",
             Point(1.0, 2.0): "dataclass"}
    back = roundtrip(value)
    assert back == value
    assert {type(k) for k in back} == {type(k) for k in value}


def test_subclasses_travel_as_their_plain_type():
    value = {"ordered": collections.OrderedDict(a=1), "default": collections.defaultdict(list, b=[1]),
             "enum": Colour.RED, "name": Name("x"), "named": collections.namedtuple("P", "x y")(1, 2),
             "bytearray": bytearray(b"ab"), "view": memoryview(b"cd")}
    back = roundtrip(value)
    assert back == {"ordered": {"a": 1}, "default": {"b": [1]}, "enum": 1, "name": "x", "named": (1, 2),
                    "bytearray": b"ab", "view": b"cd"}
    assert type(back["ordered"]) is dict and type(back["enum"]) is int and type(back["name"]) is str
    assert type(back["named"]) is tuple and type(back["bytearray"]) is bytes


@pytest.mark.parametrize("dtype", ["float32", "float64", ">f8", "float16", "int8", "uint8", "int64", "uint64",
                                   "bool", "complex64", "U5", "S3", "datetime64[ns]", "timedelta64[s]"])
def test_numpy_arrays_of_several_dtypes_and_shapes(dtype):
    rng = np.random.default_rng(0)
    for shape in [(), (0,), (3,), (2, 3), (2, 0, 4), (1, 2, 3, 4)]:
        array = (rng.integers(0, 100, size=shape) if shape else np.asarray(rng.integers(0, 100))).astype(dtype)
        back = roundtrip(array)
        assert type(back) is np.ndarray and back.dtype == array.dtype and back.shape == array.shape
        assert np.array_equal(back, array)
        assert back.flags.writeable and back.flags.c_contiguous


def test_strided_and_fortran_arrays_and_numpy_scalars():
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    for array in (base[:, ::2], base.T, np.asfortranarray(base)):
        back = roundtrip(array)
        assert np.array_equal(back, array) and back.flags.c_contiguous
    scalars = [np.float32(1.5), np.float64(2.5), np.int8(-3), np.uint64(2**64 - 1), np.bool_(True),
               np.complex128(1 + 2j), np.str_("abc"), np.bytes_(b"xy"), np.datetime64("2024-01-02")]
    for scalar in scalars:
        back = roundtrip(scalar)
        assert type(back) is type(scalar) and back == scalar


def test_registered_dataclasses_nest_and_rebuild():
    shape = Shape((Point(1.0, 2.0, "a"), Point(3.0, 4.0)), {"origin": Point(0.0, 0.0), "ids": (1, 2)})
    back = roundtrip(shape)
    assert back == shape and type(back.points[0]) is Point and type(back.meta["origin"]) is Point
    assert type(back.points) is tuple and back.meta["ids"] == (1, 2)


def test_register_is_a_decorator_and_refuses_what_is_not_a_dataclass():
    @dataclass
    class Local:
        a: int

    assert wire.register(Local) is Local and wire.register(Local) is Local  # twice is fine
    assert roundtrip(Local(3)) == Local(3)
    with pytest.raises(TypeError):
        wire.register(int)
    with pytest.raises(TypeError):
        wire.register(Local(3))


def test_a_dataframe_round_trips():
    frame = pd.DataFrame({"scheme": ["float32", "int8", None], "accuracy": [0.97, 0.96, np.nan],
                          "size": np.array([400, 120, 60], np.int64), "ok": [True, False, True],
                          "count": pd.array([1, None, 3], dtype="Int64"), "kind": pd.Categorical(["a", "b", "a"]),
                          "mixed": [1, "two", (3,)]})
    for value in (frame, frame.set_index("scheme"), frame.iloc[1:], frame.set_index(["scheme", "size"]),
                  frame.iloc[:0], pd.DataFrame({("a", 1): [1.0], ("b", 2): [2.0]}), pd.DataFrame()):
        back = roundtrip(value)
        pd.testing.assert_frame_equal(back, value)


def test_send_and_recv_over_a_pipe():
    parent, child = Pipe()
    try:
        sender = threading.Thread(target=wire.send, args=(child, ("done", realistic_result())))  # > a pipe's buffer
        sender.start()
        kind, result = wire.recv(parent)
        sender.join()
        assert kind == "done" and type(result) is job.Result and len(result.artifact) == 1 << 20
        child.send_bytes(b"\xc1")  # never used by msgpack
        with pytest.raises(wire.WireError):
            wire.recv(parent)
    finally:
        parent.close()
        child.close()


def test_large_values_travel_whole_without_base64():
    """A 15 MB artifact and a (1000, 1000) float32 array: the encoding is their bytes and little else (no base64,
    no per-element framing). Their speed is the benchmark's affair, not a test's."""
    artifact = os.urandom(15 * 1024 * 1024)
    array = np.random.default_rng(0).random((1000, 1000), dtype=np.float32)
    result = job.Result(job.Spec(0, "int8", {}, "k"), "ok", None, {"weights": array}, artifact)
    data = wire.encode(result)
    assert len(data) < (len(artifact) + array.nbytes) * 1.001 + 1000
    back = wire.decode(data)
    assert back.artifact == artifact and np.array_equal(back.metrics["weights"], array)


# Refusals on encode ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [len, lambda: 1, object(), Unregistered(1), np.array([1, "a"], dtype=object),
                                   np.zeros(2, dtype="i4,f4"), np.zeros(2, dtype="V8"), {"f": print},
                                   [1, (2, {3: object()})], 1 + 2j, Exception("x"), pd.Series([1]), type])
def test_encode_refuses_what_is_not_plain_data(value):
    with pytest.raises(TypeError, match="wire cannot carry"):
        wire.encode(value)


def test_encode_names_the_refused_type():
    with pytest.raises(TypeError, match=r"test_wire\.Unregistered.*register"):
        wire.encode({"x": [Unregistered(1)]})
    with pytest.raises(TypeError, match="builtins.function"):
        wire.encode({"x": lambda: 1})


def test_encode_refuses_nesting_too_deep():
    value = ()
    for _ in range(2000):  # msgpack's limit is about 1000
        value = (value,)
    with pytest.raises(ValueError):
        wire.encode(value)
    looped = []
    looped.append(looped)
    with pytest.raises(ValueError):
        wire.encode(looped)


# Refusals on decode: crafted bytes ---------------------------------------------------------------------------


def ext(code, payload):
    return msgpack.packb(msgpack.ExtType(code, payload), use_bin_type=True)


def array_bytes(dtype_text, shape, raw, code=ARRAY):
    return container(code, dtype_text, shape, raw)


def container(code, *items):
    """A container as the wire has it: a msgpack array led by an empty extension of its code."""
    return msgpack.packb([msgpack.ExtType(code, b""), *items], use_bin_type=True)


def dataclass_bytes(name, fields):
    return container(DATACLASS, name, fields)


@pytest.mark.parametrize("data, message", [
    (dataclass_bytes(f"{__name__}.Unregistered", {"x": 1}), "not a dataclass registered"),
    (dataclass_bytes("os.system", {}), "not a dataclass registered"),
    (dataclass_bytes("subprocess.Popen", {"args": "true"}), "not a dataclass registered"),
    (dataclass_bytes("optlib.engine.job.Inputs", {"model": 1, "data": 2}), "not a dataclass"),
    (dataclass_bytes(f"{__name__}.Point", {"x": 1, "y": 2, "__class__": 3}), "no field"),
    (dataclass_bytes(f"{__name__}.Shape", {"points": (), "derived": 3}), "no field"),
    (dataclass_bytes(f"{__name__}.Point", {"x": 1}), "malformed"),
    (container(DATACLASS, 1, 2, 3), "malformed dataclass"),
    (container(DATACLASS, "optlib.engine.job.Spec"), "malformed dataclass"),
    (array_bytes("O", [2], b"\x00" * 16), "not carried"),
    (array_bytes("|O", [1], b"\x00" * 8), "not carried"),
    (array_bytes("i4,O", [1], b"\x00" * 12), "not carried"),
    (array_bytes("V8", [1], b"\x00" * 8), "not carried"),
    (array_bytes("(2,)i4", [1], b"\x00" * 8), "not carried"),
    (array_bytes("T", [1], b"\x00" * 16), "not carried"),
    (array_bytes("U0", [1], b""), "not carried"),
    (array_bytes("no such dtype", [1], b"\x00"), "unknown numpy dtype"),
    (array_bytes("<f4", [1 << 40, 1 << 40], b"\x00" * 8), "needs"),  # declares far more than it has
    (array_bytes("<f4", [3], b"\x00" * 8), "needs"),
    (array_bytes("<f4", [-1], b""), "malformed numpy array"),
    (array_bytes("<f4", [1] * 65, b"\x00" * 4), "malformed numpy array"),
    (container(ARRAY, "<f4", [1]), "malformed numpy array"),
    (container(ARRAY, "<f4", [1], "abcd"), "malformed numpy array"),  # str, not bytes
    (container(ARRAY, "<f4", [1.0], b"abcd"), "malformed numpy array"),
    (container(ARRAY, "<f4" * 20, [1], b"abcd"), "malformed numpy array"),
    (array_bytes("<f4", [2], b"\x00" * 8, SCALAR), "shape ()"),
    (ext(BIGINT, b"1" * 5000), "big integer"),
    (ext(BIGINT, b"0x10"), "big integer"),
    (ext(TUPLE, b"\x90"), "malformed container marker"),
    (container(SET, [1]), "malformed"),  # a list is not hashable
    (container(FRAME, 1, 2, 3), "malformed DataFrame"),
    (container(FRAME, ["values", [None], "object", [1]], ["range", [None], 0, 1, 1], [["object", [1, 2]]]),
     "differ in length"),
    (ext(42, b"anything"), "unknown extension type 42"),
    (ext(127, b""), "unknown extension type 127"),
    (msgpack.packb({"a": 1})[:-1], "malformed"),  # truncated
    (msgpack.packb(1) + msgpack.packb(2), "malformed"),  # extra data
    (b"\xc1", "malformed"),
    (b"", "malformed"),
])
def test_decode_refuses_crafted_bytes(data, message):
    with pytest.raises(wire.WireError, match=message):
        wire.decode(data)


def test_decode_refuses_nesting_too_deep_and_non_bytes():
    with pytest.raises(wire.WireError):
        wire.decode(b"\x92\xc7\x00\x01" * 100_000)  # tuples nested 100 000 deep
    with pytest.raises(wire.WireError):
        wire.decode(b"\x91" * 100_000)  # lists nested 100 000 deep
    with pytest.raises(wire.WireError):
        wire.decode("not bytes")
    assert issubclass(wire.WireError, ValueError)


def test_decode_refuses_a_container_marker_out_of_place():
    marker = msgpack.ExtType(TUPLE, b"")
    for value in (marker, [1, marker], {"a": marker}, {marker: 1}, [marker, marker], [marker, [2, marker]]):
        with pytest.raises(wire.WireError, match="marker out of place"):
            wire.decode(msgpack.packb(value))
    with pytest.raises(wire.WireError, match="malformed container marker"):
        wire.decode(msgpack.packb([msgpack.ExtType(TUPLE, b"x"), 1]))
    assert wire.decode(msgpack.packb([marker, 1, [marker, 2]])) == (1, (2,))


# No pickle, ever -------------------------------------------------------------------------------------------------

# What a hostile child would send with pickle: on unpickling it calls os.system.
EVIL = b"cos\nsystem\n(S'echo pwned'\ntR."


def evil_payloads():
    """A pickle of os.system in every place of the wire format a child controls."""
    evil_str = EVIL.decode("latin-1")
    plain = [EVIL, [EVIL], {"k": EVIL}, {EVIL: 1}, {evil_str: evil_str}, evil_str]
    payloads = [msgpack.packb(v, use_bin_type=True) for v in plain] + [EVIL]
    for code in list(range(0, 128)):
        payloads.append(ext(code, EVIL))
        payloads.append(ext(code, msgpack.packb([EVIL], use_bin_type=True)))
        payloads.append(container(code, EVIL))  # a marker-led array: for each container kind
        payloads.append(container(code, EVIL, [EVIL], EVIL))
        payloads.append(container(code, evil_str, {"x": EVIL}))
    payloads += [
        array_bytes("S33", [1], EVIL + b"\x00" * (33 - len(EVIL))),
        array_bytes("u1", [len(EVIL)], EVIL),
        array_bytes(evil_str, [1], EVIL),
        array_bytes("O", [1], EVIL),
        container(ARRAY, EVIL, [1], EVIL),
        container(ARRAY, "|u1", EVIL, EVIL),
        array_bytes("O", [], EVIL, SCALAR),
        dataclass_bytes(evil_str, {"x": EVIL}),
        dataclass_bytes(f"{__name__}.Point", {"x": EVIL, "y": EVIL, "label": EVIL}),
        dataclass_bytes("optlib.engine.job.Result", {"spec": EVIL, "status": EVIL, "metrics": {EVIL: EVIL},
                                                     "artifact": EVIL}),
        container(FRAME, ["values", [EVIL], None, [EVIL]], ["range", [None], 0, 1, 1], [["object", [EVIL]]]),
        container(FRAME, ["values", [None], "object", [1]], ["range", [None], 0, 1, 1], [["object", [EVIL]]]),
        container(FRAME, ["values", [None], "object", [1]], ["range", [None], 0, 1, 1], [[evil_str, [EVIL]]]),
        container(TUPLE, EVIL, [EVIL], {EVIL: EVIL}),
        container(SET, EVIL),
        ext(PATH, EVIL),
        msgpack.packb([msgpack.ExtType(TUPLE, b""), [msgpack.ExtType(DATACLASS, EVIL), EVIL]]),
        msgpack.packb([msgpack.ExtType(DATACLASS, b""), evil_str, {"x": msgpack.ExtType(DATACLASS, b"")}]),
    ]
    return payloads


def test_decode_never_unpickles_nor_calls_anything(monkeypatch):
    import _pickle
    import copyreg

    called = []

    def trap(name):
        def tripped(*args, **kwargs):
            called.append(name)
            raise AssertionError(f"{name} was called while decoding wire data")
        return tripped

    monkeypatch.setattr(os, "system", trap("os.system"))
    for module, names in ((pickle, ("loads", "load", "Unpickler", "_loads", "_load", "_Unpickler")),
                          (_pickle, ("loads", "load", "Unpickler")), (copyreg, ("_reconstructor",)),
                          (np, ("load",)), (pd, ("read_pickle",))):
        for name in names:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, trap(f"{module.__name__}.{name}"))

    outcomes = collections.Counter()
    for data in evil_payloads():
        try:
            value = wire.decode(data)
        except wire.WireError:
            outcomes["refused"] += 1
            continue
        outcomes["plain"] += 1
        assert_plain(value)
    assert not called
    assert outcomes["refused"] > 100 and outcomes["plain"] >= 7, outcomes
    # the pickle bytes come back as the bytes they are
    assert wire.decode(msgpack.packb({"k": EVIL}, use_bin_type=True)) == {"k": EVIL}
    assert wire.decode(ext(PATH, EVIL)) == pathlib.Path(EVIL.decode())


def assert_plain(value):
    """Only carried types, all the way down."""
    if isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            assert_plain(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            assert_plain(key)
            assert_plain(item)
    elif isinstance(value, np.ndarray):
        assert value.dtype.kind in "biufcUSMm"
    elif dataclasses.is_dataclass(value):  # a registered one, rebuilt from plain fields
        assert type(value) in (Point, Shape, job.Spec, job.Event, job.Result), type(value)
        for item in dataclasses.fields(value):
            assert_plain(getattr(value, item.name))
    else:
        assert value is None or type(value) in (bool, int, float, str, bytes) or isinstance(
            value, (pathlib.Path, np.generic, pd.DataFrame)), type(value)
