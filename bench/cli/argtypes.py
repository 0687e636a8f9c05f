"""argparse value types shared by the subcommands: clear messages for bad numbers."""

from __future__ import annotations

import argparse
from typing import Callable


def whole_number(minimum: int) -> Callable[[str], int]:
    """A type that accepts whole numbers of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"whole number >= {minimum}"
    return parse


positive = whole_number(1)
non_negative = whole_number(0)


class Once(argparse.Action):
    """Store an option that may be given once: a second value is refused, not silently kept
    in place of the first (``-d A -d B`` would otherwise run only B)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values,
                 option_string: str | None = None) -> None:
        marker = f"_given_{self.dest}"
        if getattr(namespace, marker, False):
            parser.error(f"{'/'.join(self.option_strings)} was given twice ({getattr(namespace, self.dest)} and "
                         f"{values}): give it once, and run the command once for each")
        setattr(namespace, marker, True)
        setattr(namespace, self.dest, values)
