"""``syncmlctl``: the command-line client of a running syncmld (over the session D-Bus)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from syncmld import __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``syncmlctl``."""
    parser = argparse.ArgumentParser(
        prog="syncmlctl", description="Control a running syncmld over the session D-Bus."
    )
    parser.add_argument("--version", action="version", version=f"syncmlctl {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``syncmlctl``; returns the exit status."""
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0
