"""What the engine's child processes say to their parent: one small frozen dataclass per kind of message.

They travel as plain data (:mod:`optlib.engine.wire`: registered dataclasses, numbers, strings, arrays,
bytes), never as pickles, and :func:`receive` lets through only the kinds the listener expects, so a child
that was subverted can neither run code in its parent nor make it act on a message of the wrong kind.

- a sweep's worker (:mod:`optlib.engine.executors`): :class:`Ready`, :class:`Fatal`, :class:`Reported`,
  :class:`Quiet`, :class:`Loud`, :class:`Done`;
- page work (:mod:`optlib.engine.isolated`) and the TFLite Micro helper (:mod:`optlib.engine.micro_process`):
  :class:`Answer`, :class:`Failure`, :class:`Progress`.
"""

from dataclasses import dataclass

from optlib.engine import wire


@wire.register
@dataclass(frozen=True)
class Ready:
    """The worker loaded the model and the data and takes jobs."""


@wire.register
@dataclass(frozen=True)
class Fatal:
    """The worker could not load the model or the data (``text`` says why); it takes no job."""

    text: str


@wire.register
@dataclass(frozen=True)
class Reported:
    """A job's progress (an :class:`optlib.engine.job.Event`)."""

    event: object


@wire.register
@dataclass(frozen=True)
class Quiet:
    """The worker is about to time a latency: pause the others, then say go."""


@wire.register
@dataclass(frozen=True)
class Loud:
    """The latency is timed: the others may run again."""


@wire.register
@dataclass(frozen=True)
class Done:
    """A job's Result (an :class:`optlib.engine.job.Result`; its spec is the parent's, whatever this one says)."""

    result: object


@wire.register
@dataclass(frozen=True)
class Answer:
    """What the asked function returned (plain data)."""

    value: object


@wire.register
@dataclass(frozen=True)
class Failure:
    """The asked function raised: the exception's type name and its message."""

    kind: str
    text: str


@wire.register
@dataclass(frozen=True)
class Progress:
    """A call of the ``progress`` function the asked function was given."""

    args: tuple


FIELD_TYPES = {Fatal: {"text": str}, Failure: {"kind": str, "text": str}, Progress: {"args": tuple}}


def receive(conn, *kinds, fields=None):
    """The next message on ``conn``, which must be one of ``kinds`` with fields of their types.

    Args:
        fields: {kind: {field: type}} beyond :data:`FIELD_TYPES` (the executors' job types).

    Raises:
        EOFError, OSError: the child closed its end, died, or stalled half-way through a message.
        wire.WireError: it sent what no such child sends.
    """
    message = wire.recv(conn)
    types = {**FIELD_TYPES.get(type(message), {}), **(fields or {}).get(type(message), {})}
    if type(message) not in kinds or any(not isinstance(getattr(message, name), kind) for name, kind in types.items()):
        raise wire.WireError(f"a message no such child sends ({type(message).__name__})")
    return message
