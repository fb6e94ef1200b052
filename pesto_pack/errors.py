"""Errors that a user can act on: each message says what is wrong, where, and what to do."""


class PestoError(Exception):
    """Base of every error this toolkit reports to a person (no traceback needed)."""


class ProjectError(PestoError):
    """A PESTO project's files are missing, unreadable or inconsistent."""


class PayloadError(PestoError):
    """A request or test-file value cannot be decoded, encoded or read by its payload type.

    `field` is filled by the caller that knows which field was being handled, so a type's
    code only has to say what is wrong with the value.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"field '{self.field}': {self.message}" if self.field else self.message
