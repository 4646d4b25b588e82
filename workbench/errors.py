"""Exceptions whose messages are meant for the user, not for a traceback."""


class WorkbenchError(Exception):
    """A problem the user can act on (bad input, missing file, wrong option).

    The CLI prints the message without a traceback; the UI shows it in the page.
    """
