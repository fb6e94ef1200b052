"""The one error shape of the service: `{"error": {"status", "field", "message"}}`."""

import json
from collections.abc import Mapping


class ServiceError(Exception):
    """An answer other than success, with a message the caller (or operator) can act on.

    `field` names the input property at fault (`image`, `options[2]`), or is None.
    """

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = dict(headers or {})

    def to_json(self) -> str:
        return error_json(self.status, self.message, self.field)


class AnswerError(ServiceError):
    """`process()` answered something that breaks output_schema.json: the service's fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(500, message, field)


def error_json(status: int, message: str, field: str | None = None) -> str:
    return json.dumps({"error": {"status": status, "field": field, "message": message}})
