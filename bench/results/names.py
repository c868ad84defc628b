"""How names in a definition become file names in a run folder (no dependencies: the
definition's checks refuse two names that would become one file)."""

from __future__ import annotations


def part_name(name: str) -> str:
    """`name` (a pairing such as `mlp@digits.r0`, a dataset key) as a file-name-safe string."""
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)
