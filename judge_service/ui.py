"""The rich console shared by the CLI and the demo."""

from __future__ import annotations

from rich.console import Console


def make_console() -> Console:
    """A console that stays wide enough for report tables when output goes to a file or pipe."""
    return Console(width=None if Console().is_terminal else 160)
