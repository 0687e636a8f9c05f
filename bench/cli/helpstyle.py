"""One help style for every command: text kept as written, each default shown once, and
an epilog with examples and the exit status."""

from __future__ import annotations

import argparse
from typing import Sequence

#: The exit status of every command (see the README's "Exit status").
EXIT_STATUS = "Exit status: 0 done, 1 the run, a check or a gate failed, 2 usage error or bad input."


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions wrapped, epilogs (text with line breaks) as written; "(default: X)" after
    an option's help only where X says something (not None, False, an empty list or a
    flag's off state) and the help does not already name its default."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or action.nargs == 0 or default in (None, False, argparse.SUPPRESS)
                or default == []
                or "default" in text.lower() or "%(default)" in text):
            return text
        return f"{text} (default: %(default)s)"


def epilog(examples: Sequence[str], notes: str = "") -> str:
    """The epilog of a command: its examples (comment lines start with '#'), optional notes,
    and the exit status."""
    lines = ["Examples:", *(f"  {e}" for e in examples), ""]
    if notes:
        lines += [notes.rstrip("\n"), ""]
    return "\n".join([*lines, EXIT_STATUS]) + "\n"
