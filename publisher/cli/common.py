"""What every CLI module shares: error reporting and opening the working folder."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class _Debug:
    enabled: bool = False


DEBUG = _Debug()


class UserError(Exception):
    """Bad input or configuration: exit 2 with one line per problem, no traceback."""

    def __init__(self, problems: Iterable[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


def print_problems(problems: Iterable[str]) -> None:
    for line in problems:
        print(line, file=sys.stderr)
