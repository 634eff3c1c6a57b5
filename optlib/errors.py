"""Errors that reach a person: what was wrong and what to do about it."""


class InputError(Exception):
    """The model, the data or a setting cannot be used.

    The message is one plain sentence (or two) that says what was wrong and
    what to do next. The CLI prints it and exits with status 2; the app shows
    it with ``st.error``.
    """


def first_line(problem, limit=300):
    """The first line of an exception's message (at most ``limit`` characters), or "no message"."""
    text = str(problem).strip()
    return (text.splitlines()[0] if text else "no message")[:limit]
