"""The errors a user can cause or meet. Each carries one sentence: what failed and what to do.

The CLI prints `str(error)` and exits with `error.exit_code`; the console shows it in a
notification or as the state of a part. Nothing above `platform` ever shows a traceback
for one of these.
"""


class PlatformError(Exception):
    """Base of every expected failure. The message is one sentence for a person."""

    exit_code = 1


class InvalidInput(PlatformError):
    """A bad argument: a path with `..`, a malformed reference, a file that is not an image."""

    exit_code = 2


class NotFound(PlatformError):
    """A repo, commit, file, experiment, model, version or deployment that does not exist."""

    exit_code = 3


class Conflict(PlatformError):
    """The thing exists already, or is in a state that does not allow the action."""

    exit_code = 4


class Unreachable(PlatformError):
    """A backend that does not answer: no pachd, no Determined master, no API server."""

    exit_code = 5


class NotAvailable(PlatformError):
    """A capability that this profile or backend does not have."""

    exit_code = 6


class ReadOnlyError(NotAvailable):
    """A change asked of a platform opened read-only."""
