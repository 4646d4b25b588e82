"""Exceptions whose messages are meant for the user, not for a traceback."""

from __future__ import annotations


class WorkbenchError(Exception):
    """A problem the user can act on (bad input, missing file, wrong option).

    The CLI prints the message without a traceback; the UI shows it in the page. A message
    that names command-line options or commands may carry the page's own wording in ``page``
    (what the browser workbench shows instead, in its words: steps, buttons, fields).
    """

    def __init__(self, message: str = "", *, page: str | None = None) -> None:
        super().__init__(message)
        self.page = page

    def for_page(self) -> str:
        """The message as the page shows it (its own wording, else the message)."""
        return self.page or str(self)
