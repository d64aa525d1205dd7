"""The two consoles every command writes to: results on stdout, errors and progress on
stderr (so a command's output can be piped while its progress stays on the terminal)."""

from __future__ import annotations

from rich.console import Console

console = Console()
err_console = Console(stderr=True)
