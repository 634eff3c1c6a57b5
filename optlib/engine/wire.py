"""Plain data between processes: what a sandboxed child sends back to its parent, as msgpack.

Why: the engine runs untrusted model files in child processes (sweep
workers, page work, the TFLite Micro helper). ``Connection.send`` /
``Connection.recv`` pickle, and unpickling runs code: a child subverted by a
hostile model could send a crafted pickle that runs whatever it likes in the
unsandboxed parent on ``conn.recv()``. What this module decodes is built only
from msgpack's plain values and the few types below, rebuilt by this code; no
pickle is ever involved and no class is looked up by a name the data chose,
except the dataclasses registered here.

What it carries (each comes back as itself unless said):

* ``None``, ``bool``, ``int`` (any size), ``float``, ``str``, ``bytes``
  (``bytearray`` and ``memoryview`` come back as ``bytes``);
* ``list``, ``tuple`` (back as a tuple), ``dict`` (keys of any carried
  hashable type: str, int, float, None, tuple, frozenset, ...), ``set``,
  ``frozenset``; subclasses of these and of str/int/float (``OrderedDict``,
  ``IntEnum``, ...) go as the plain base type;
* numpy arrays of bool, integer, float, complex, ``U``/``S`` strings and
  datetime64/timedelta64 dtypes, any shape including 0-d (back as a writable
  C-ordered array of the same dtype and shape); numpy scalars (back as numpy
  scalars of the same dtype: ``np.float32(1.5)`` stays a ``np.float32``,
  ``np.float64`` stays a ``np.float64``). Object and structured dtypes are
  refused both ways;
* ``pathlib`` paths (back as ``pathlib.Path``);
* pandas DataFrames: columns, index (a range, a plain or a multi-level one,
  with names) and values; numpy-typed columns keep their dtype, and so do
  pandas' str/string, category, boolean and nullable integer/float ones; any
  other column (object, datetime with a time zone, ...) is carried as an
  object column of its values, which must be carried types themselves;
* registered dataclasses, field by field (fields may hold any carried value,
  other registered dataclasses included).

Anything else raises ``TypeError`` naming its type on :func:`encode`: the
sender converts it first (an exception, say, as ``{"error": type name,
"message": text}``). Data :func:`decode` does not accept (an unregistered
dataclass, an object dtype, an unknown extension, truncated or malformed
bytes, nesting deeper than msgpack's limit) raises :class:`WireError`.

Registering a dataclass, by its qualified name ``module.QualName``::

    from optlib.engine import wire

    @wire.register
    @dataclass(frozen=True)
    class Facts:
        name: str
        shape: tuple

    wire.register(SomeOtherDataclass)   # or as a call

Both processes must have registered it (importing the module that does it is
enough). ``optlib.engine.job``'s ``Spec``, ``Event`` and ``Result`` are
registered from the start (imported on first use). Decoding calls
``cls(**fields)`` with the dataclass's own init fields only.

Over a ``multiprocessing.connection.Connection``::

    wire.send(conn, ("done", result))       # conn.send_bytes(encode(...))
    kind, result = wire.recv(conn)          # decode(conn.recv_bytes())
"""

import dataclasses
import importlib
import math
import pathlib
import sys

import msgpack

__all__ = ["WireError", "encode", "decode", "register", "send", "recv"]

# The format: msgpack, with extension types (codes 1..127; never reuse a number for another meaning).
# Leaves are an extension whose payload is the value's bytes. Containers are a msgpack array whose first
# item is an empty "marker" extension saying what the rest is ([<tuple>, 1, 2] is the tuple (1, 2)): one
# pass both ways, a large bytes value inside a Result is copied once, and msgpack bounds the nesting
# (about a thousand levels; deeper raises ValueError on encode, WireError on decode). msgpack's own
# timestamp extension (-1), which encode never makes, decodes to a float.
_TUPLE, _SET, _FROZENSET, _ARRAY, _SCALAR, _PATH, _BIGINT, _DATACLASS, _FRAME = range(1, 10)
_CONTAINERS = frozenset((_TUPLE, _SET, _FROZENSET, _ARRAY, _SCALAR, _DATACLASS, _FRAME))
_MAX_DIMS = 64  # numpy's own limit
_ARRAY_KINDS = frozenset("biufcUSMm")  # bool, ints, floats, complex, str, bytes, datetime64, timedelta64
# pandas dtypes other than numpy's that a DataFrame's column or index keeps (by name); any other: object
_PANDAS_DTYPES = frozenset(["object", "str", "string", "category", "boolean", "Float32", "Float64",
                            *(f"{u}Int{bits}" for u in ("", "U") for bits in (8, 16, 32, 64))])

# Dataclasses known before anyone registers them: qualified name -> (module, attribute), imported on first use.
_BUILT_IN = {f"optlib.engine.job.{name}": ("optlib.engine.job", name) for name in ("Spec", "Event", "Result")}
_REGISTRY = {}


class WireError(ValueError):
    """Bytes that :func:`decode` does not accept."""


def register(cls):
    """Allow the dataclass ``cls`` on the wire, by its name ``module.QualName``; returns ``cls`` (a decorator)."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"wire.register takes a dataclass, not {cls!r}")
    name = _name(cls)
    if _REGISTRY.get(name, cls) is not cls:
        raise ValueError(f"another class is already registered on the wire as {name}")
    _REGISTRY[name] = cls
    return cls


def encode(value):
    """``value`` as msgpack bytes (see the module's docstring for what it may hold).

    Raises:
        TypeError: ``value`` holds something not carried (named in the message).
        ValueError: it nests too deep (or refers to itself).
    """
    return msgpack.packb(value, use_bin_type=True, strict_types=True, default=_default)


def decode(data):
    """The value :func:`encode` made into ``data`` (bytes, bytearray or memoryview).

    Raises:
        WireError: ``data`` is not such bytes, or holds what the wire does not carry.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError(f"wire.decode takes bytes, not {type(data).__name__}")
    reader = _Reader()
    try:
        # msgpack bounds every length by len(data): nothing is allocated beyond what was received.
        # At most MAX_MAP_KEYS keys a map: a map of colliding keys costs its square to build.
        value = msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True, timestamp=1,
                                ext_hook=reader.ext, list_hook=reader.container, max_map_len=MAX_MAP_KEYS)
    except WireError:
        raise
    except Exception as problem:  # noqa: BLE001 — any failure on crafted bytes is the bytes' fault
        raise WireError(f"malformed wire data ({type(problem).__name__}: {problem})") from None
    if reader.markers != reader.used:  # one out of place would be left in the value
        raise WireError("malformed wire data (a container marker out of place)")
    return value


def send(conn, value):
    """Send ``value`` on a ``multiprocessing.connection.Connection`` as plain data (what :func:`encode` makes)."""
    packer = msgpack.Packer(use_bin_type=True, strict_types=True, default=_default, autoreset=False)
    packer.pack(value)
    with packer.getbuffer() as message:  # no copy into a bytes object first
        conn.send_bytes(message)


MAX_MAP_KEYS = 10_000
MAX_MESSAGE = 4_000_000_000  # bytes: far above any artifact, far below what would take the machine's memory


def recv(conn, maxlength=MAX_MESSAGE):
    """Receive one value :func:`send` sent (``maxlength``: refuse longer messages, see ``recv_bytes``).

    Raises:
        EOFError, OSError: as ``Connection.recv_bytes`` (the other end closed or died).
        WireError: the message is not plain wire data.
    """
    return decode(conn.recv_bytes(maxlength))


# Encoding ------------------------------------------------------------------------------------------------------


def _container(code, items):
    return [msgpack.ExtType(code, b""), *items]


def _default(value):
    """What msgpack does not pack itself (strict_types: also subclasses of its types, tuples and big ints)."""
    kind = type(value)
    np = sys.modules.get("numpy")  # not imported: it cannot be a numpy value
    if np is not None:  # before str/int/float: np.float64 and np.str_ subclass them
        if isinstance(value, np.ndarray):
            return _container(_ARRAY, _array_state(np, value))
        if isinstance(value, np.generic):
            return _container(_SCALAR, _array_state(np, np.asarray(value)))
    if kind is int:  # past 64 bits
        return msgpack.ExtType(_BIGINT, str(value).encode("ascii"))
    if isinstance(value, tuple):  # a namedtuple too, as a plain tuple
        return _container(_TUPLE, value)
    if isinstance(value, frozenset):
        return _container(_FROZENSET, value)
    if isinstance(value, set):
        return _container(_SET, value)
    if isinstance(value, pathlib.PurePath):
        return msgpack.ExtType(_PATH, str(value).encode("utf-8", "surrogateescape"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = _name(kind)
        if _registered(name) is None:
            raise TypeError(f"wire cannot carry {name}: a dataclass not registered with optlib.engine.wire.register")
        return _container(_DATACLASS, (name, {f.name: getattr(value, f.name)
                                              for f in dataclasses.fields(value) if f.init}))
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(value, pd.DataFrame):
        return _container(_FRAME, _frame_state(np, pd, value))
    # Subclasses of msgpack's own types, as the plain type (strict_types sends them here)
    if isinstance(value, int):  # IntEnum, ...
        plain = int(value)
        return plain if -2**63 <= plain < 2**64 else msgpack.ExtType(_BIGINT, str(plain).encode("ascii"))
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    raise TypeError(f"wire cannot carry {_name(kind)}: send plain data (numbers, strings, bytes, lists, "
                    "dicts, numpy arrays, registered dataclasses)")


def _array_state(np, array):
    """[dtype, shape, raw bytes]: a view of the array's memory, which msgpack copies straight into the message."""
    dtype = array.dtype
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise TypeError(f"wire cannot carry a numpy array of dtype {dtype} (object or structured): "
                        "convert it, e.g. with .tolist()")
    raw = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return dtype.str, list(array.shape), memoryview(raw)


def _frame_state(np, pd, frame):
    columns = [_values_state(np, frame.iloc[:, i]) for i in range(frame.shape[1])]
    return [_index_state(np, pd, frame.columns), _index_state(np, pd, frame.index), columns]


def _index_state(np, pd, index):
    names = list(index.names)
    if isinstance(index, pd.RangeIndex):
        return ["range", names, index.start, index.stop, index.step]
    if isinstance(index, pd.MultiIndex):
        return ["multi", names, [tuple(item) for item in index.tolist()]]
    return ["values", names, *_values_state(np, index)]


def _values_state(np, values):
    """A column's or an index's [pandas dtype name or None, numpy array or list of its values]."""
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in _ARRAY_KINDS:
        return [None, values.to_numpy()]
    name = str(dtype)
    if name == "category":  # its categories and order too, which its values alone do not say
        codes = values.cat.codes if hasattr(values, "cat") else values.codes
        return [name, [_values_state(np, dtype.categories), bool(dtype.ordered), np.asarray(codes)]]
    return [name if name in _PANDAS_DTYPES else "object", values.to_numpy(dtype=object, na_value=None).tolist()]


# Decoding ------------------------------------------------------------------------------------------------------


class _Marker:
    """What an empty container extension decodes to, until the array it leads is rebuilt."""

    __slots__ = ("code",)

    def __init__(self, code):
        self.code = code


class _Reader:
    """msgpack's hooks for one decode; counts the markers made and used, which must match."""

    def __init__(self):
        self.markers = self.used = 0

    def ext(self, code, data):
        if code in _CONTAINERS:
            if data:
                raise WireError(f"malformed container marker {code} on the wire")
            self.markers += 1
            return _Marker(code)
        if code == _PATH:
            return pathlib.Path(data.decode("utf-8", "surrogateescape"))
        if code == _BIGINT:
            if not 0 < len(data) <= 4300 or not data.lstrip(b"-").isdigit():
                raise WireError("malformed big integer on the wire")
            return int(data)
        raise WireError(f"unknown extension type {code} on the wire")

    def container(self, items):
        if not items or type(items[0]) is not _Marker:
            return items  # a plain list
        self.used += 1
        code = items[0].code
        if code == _TUPLE:
            return tuple(items[1:])
        if code == _SET:
            return set(items[1:])
        if code == _FROZENSET:
            return frozenset(items[1:])
        if code == _ARRAY:
            return _array(items[1:])
        if code == _SCALAR:
            array = _array(items[1:])
            if array.ndim:
                raise WireError("a numpy scalar on the wire must have shape ()")
            return array[()]
        if code == _DATACLASS:
            return _dataclass(items[1:])
        return _frame(items[1:])


def _array(state):
    import numpy as np

    if not (len(state) == 3 and isinstance(state[0], str) and len(state[0]) <= 32 and isinstance(state[1], list)
            and len(state[1]) <= _MAX_DIMS and all(type(n) is int and n >= 0 for n in state[1])
            and isinstance(state[2], bytes)):
        raise WireError("malformed numpy array on the wire")
    text, shape, data = state
    try:
        dtype = np.dtype(text)
    except (TypeError, ValueError):
        raise WireError(f"unknown numpy dtype {text!r} on the wire") from None
    if (dtype.kind not in _ARRAY_KINDS or dtype.hasobject or dtype.fields is not None
            or dtype.subdtype is not None or dtype.itemsize == 0):
        raise WireError(f"numpy dtype {text!r} is not carried on the wire (only plain numbers, bools, "
                        "strings and bytes)")
    count = math.prod(shape)
    if count * dtype.itemsize != len(data):
        raise WireError(f"a numpy array of shape {tuple(shape)} and dtype {dtype} needs "
                        f"{count * dtype.itemsize} bytes, the wire has {len(data)}")
    if count == 0:
        return np.empty(shape, dtype)
    return np.frombuffer(data, dtype, count).reshape(shape).copy()  # writable, not tied to the message


def _dataclass(state):
    if not (len(state) == 2 and isinstance(state[0], str) and isinstance(state[1], dict)):
        raise WireError("malformed dataclass on the wire")
    name, fields = state
    cls = _registered(name)
    if cls is None:
        raise WireError(f"{name!r} is not a dataclass registered on the wire (optlib.engine.wire.register)")
    declared = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = [key for key in fields if key not in declared]
    if unknown:
        raise WireError(f"{name} has no field {unknown[0]!r}")
    try:
        return cls(**fields)
    except TypeError as problem:  # a required field missing
        raise WireError(f"malformed {name} on the wire: {problem}") from None


def _frame(state):
    import numpy as np
    import pandas as pd

    if not (len(state) == 3 and isinstance(state[2], list)):
        raise WireError("malformed DataFrame on the wire")
    columns, index = _index(np, pd, state[0]), _index(np, pd, state[1])
    if len(columns) != len(state[2]):
        raise WireError("malformed DataFrame on the wire: columns and values differ in number")
    series = {}
    for i, column in enumerate(state[2]):
        values = _values(np, column)
        if len(values) != len(index):
            raise WireError("malformed DataFrame on the wire: a column and the index differ in length")
        series[i] = pd.Series(values, index=index)
    frame = pd.DataFrame(series, index=index)
    frame.columns = columns
    return frame


def _index(np, pd, state):
    if not (isinstance(state, list) and state and state[0] in ("range", "multi", "values")
            and len(state) == {"range": 5, "multi": 3, "values": 4}[state[0]] and isinstance(state[1], list)
            and all(name is None or isinstance(name, (str, int, float, tuple)) for name in state[1])):
        raise WireError("malformed DataFrame index on the wire")
    kind, names = state[0], state[1]
    if kind == "range":
        if not all(type(n) is int for n in state[2:]) or state[4] == 0:
            raise WireError("malformed DataFrame range index on the wire")
        return pd.RangeIndex(state[2], state[3], state[4], name=names[0] if names else None)
    if kind == "multi":
        if not (isinstance(state[2], list) and all(isinstance(v, tuple) for v in state[2])) or len(names) < 2:
            raise WireError("malformed DataFrame multi-index on the wire")
        if not state[2]:
            return pd.MultiIndex.from_arrays([[] for _ in names], names=names)
        return pd.MultiIndex.from_tuples(state[2], names=names)
    return pd.Index(_values(np, state[2:]), name=names[0] if names else None, tupleize_cols=False)


def _values(np, state):
    """The values :func:`_values_state` carried: a numpy array, or a pandas-typed (or object) Series."""
    import pandas as pd

    if not (isinstance(state, list) and len(state) == 2):
        raise WireError("malformed DataFrame values on the wire")
    dtype, values = state
    if dtype is None and isinstance(values, np.ndarray) and values.ndim == 1:
        return values
    if dtype == "category":
        if not (isinstance(values, list) and len(values) == 3 and isinstance(values[1], bool)
                and isinstance(values[2], np.ndarray) and values[2].dtype.kind == "i" and values[2].ndim == 1):
            raise WireError("malformed DataFrame categorical values on the wire")
        return pd.Categorical.from_codes(values[2], categories=pd.Index(_values(np, values[0])), ordered=values[1])
    if dtype in _PANDAS_DTYPES and isinstance(values, list):
        values = pd.Series(values, dtype=object)
        return (values if dtype == "object" else values.astype(dtype)).array  # no index: nothing to align
    raise WireError("malformed DataFrame values on the wire")


# Registry ------------------------------------------------------------------------------------------------------


def _name(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _registered(name):
    """The registered dataclass called ``name``, or None; the built-in ones are imported on first use."""
    cls = _REGISTRY.get(name)
    if cls is None and name in _BUILT_IN:
        module, attribute = _BUILT_IN[name]
        found = getattr(importlib.import_module(module), attribute, None)
        if isinstance(found, type) and dataclasses.is_dataclass(found) and _name(found) == name:
            cls = _REGISTRY[name] = found
    return cls
