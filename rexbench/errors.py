"""The one exception type that the CLI turns into a one-line message and exit code 2."""


class RexbenchError(Exception):
    """A user-facing error: bad input, a missing file, an unusable configuration.

    The message is shown as one line, without a traceback; keep it actionable.
    """

    exit_code = 2
