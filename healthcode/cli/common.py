"""Helpers shared by the CLI modules: consoles and option types."""

from __future__ import annotations

from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
