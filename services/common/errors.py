"""The three families of domain errors every service raises; the web layer maps each to a status.

Pure Python on purpose: domain modules import this and nothing of the web or the database.
"""


class DomainError(Exception):
    """Base of every error a domain raises on purpose."""


class InvalidCommand(DomainError):
    """The command is malformed in itself, whatever the state: fix the request (422)."""


class RuleViolation(DomainError):
    """The command would break a rule given the current state: look, then decide (409)."""


class NotFound(DomainError):
    """The thing the command refers to does not exist, or did not at the time asked (404)."""


class Unavailable(DomainError):
    """Something the command needs did not answer; nothing was written, retry later (503)."""

    # Seconds to wait before retrying, sent as `Retry-After` when known.
    retry_after: int | None = None


class Forbidden(DomainError):
    """The caller's role or organization may not do this to this object; nothing written (403)."""
