"""The one exception type that the CLI turns into a one-line message and exit code 2, and the one-line
form of any other exception that such a message quotes."""


class RexbenchError(Exception):
    """A user-facing error: bad input, a missing file, an unusable configuration.

    The message is shown as one line, without a traceback; keep it actionable.
    """

    exit_code = 2


def first_line(exc: BaseException) -> str:
    """`Type: first line of the message`, or the type alone for an empty message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
