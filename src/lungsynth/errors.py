"""One exception type for bad input, so every stage stops with the same kind of message."""

from __future__ import annotations

from os import PathLike


class InputError(Exception):
    """Bad input (file or setting): names the offending file or key and the problem.

    The workflow scripts turn it into one line in the rule's log and a non-zero exit,
    instead of a traceback, because the fix is on the user's side.
    """

    def __init__(self, where: str | PathLike, problem: str):
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")
