"""Errors that reach a person: what was wrong and what to do about it."""


class InputError(Exception):
    """The model, the data or a setting cannot be used.

    The message is one plain sentence (or two) that says what was wrong and
    what to do next. The CLI prints it and exits with status 2; the app shows
    it with ``st.error``.
    """
