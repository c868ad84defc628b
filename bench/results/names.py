"""How names in a definition become file names in a run folder (no dependencies: the
definition's checks refuse two names that would become one file)."""

from __future__ import annotations


def part_name(name: str) -> str:
    """`name` (a pairing such as `mlp@digits.r0`, a dataset key) as a file-name-safe string."""
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)


def pairing_name(model: str, dataset: str, repeat: int) -> str:
    """`mlp@digits.r0`: a pairing's repeat, the unit the scheduler runs and names files by."""
    return f"{model}@{dataset}.r{repeat}"


def trial_part(table: str, part: str, trial: int) -> str:
    """Where one trial writes its rows of `table`: parts/<table>/<part>/<trial>.parquet
    (`part`: the pairing's part_name)."""
    return f"parts/{table}/{part}/{trial:05d}.parquet"
