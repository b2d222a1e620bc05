"""The one error type of the reports: a status, a message and the parameter it is about."""

from __future__ import annotations


class ReportError(Exception):
    """A report that cannot be made; `status` is the HTTP status, `loc` the parameter it is about."""

    def __init__(self, status: int, message: str, loc: list[str | int] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.loc = loc or ["query"]
