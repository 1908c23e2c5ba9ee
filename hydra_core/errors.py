"""The one shape of a refused request, shared by every part and the worker's API.

A service raises a ``Refusal`` (or a subclass naming its ``code`` and ``status`` in the class
statement); the API's error middleware answers it as ``{code, message}`` (and ``details`` where
the refusal has them) with that status, so no
route translates errors by hand.
"""

from __future__ import annotations

from typing import Any


class Refusal(Exception):
    """A request refused: ``status`` and ``code`` are what the API answers, the text is for people.

    ``class NotFound(Refusal, code="thing_not_found", status=404)`` declares a kind; an instance
    may override either where the reason is only known at run time.
    """

    code: str = "invalid_request"
    status: int = 400
    # More for programs than the message says (a chapter's problems, each with its line): the
    # API answers it as ``details`` beside ``code`` and ``message``.
    details: dict[str, Any] | None = None

    def __init_subclass__(
        cls, *, code: str | None = None, status: int | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
        if status is not None:
            cls.status = status

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
