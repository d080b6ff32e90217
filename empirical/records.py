"""Resumable JSONL records of a decoding run: one line per (tree, method, prompt), appended as it goes.

Convention: a record's ``key`` is ``"<tree>|<method>|<prompt_index>"``; a rerun skips keys already
present. Each line is written and fsynced at once, so an interrupted run loses at most the prompt
in flight (a torn last line is dropped on the next open).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["record_key", "RecordLog", "write_atomic"]


def record_key(tree: str, method: str, prompt_index: int) -> str:
    """The identity of one decoded prompt within a run.

    Parameters
    ----------
    tree : str
    method : str
        The verification method (a name or a method module).
    prompt_index : int

    Returns
    -------
    str
    """
    return f"{tree}|{method}|{int(prompt_index)}"


class RecordLog:
    """Append-only JSONL file of prompt records.

    Parameters
    ----------
    path : str or Path
        The ``.jsonl`` file (created with its folder if missing).
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._records = self._read_and_repair()

    @property
    def records(self) -> list[dict]:
        """All complete records, in file order."""
        return list(self._records)

    def done(self) -> set:
        """The keys of the finished prompts.

        Returns
        -------
        set
        """
        return {r["key"] for r in self._records}

    def append(self, record: dict) -> None:
        """Write one record (must hold ``key``) as a line, flushed and fsynced. O(record size).

        Parameters
        ----------
        record : dict

        Raises
        ------
        ValueError
            On bad input (the message names the rule): A record must hold its ``key`` (see
            record_key).
        """
        if "key" not in record:
            raise ValueError("a record must hold its `key` (see record_key).")
        line = json.dumps(record, separators=(",", ":"), allow_nan=False)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._records.append(record)

    def _read_and_repair(self) -> list[dict]:
        if not self.path.exists():
            return []
        lines = [l for l in self.path.read_text(encoding="utf-8").split("\n") if l.strip()]
        good = []
        for i, line in enumerate(lines):
            try:
                good.append(json.loads(line))
            except json.JSONDecodeError:
                if i < len(lines) - 1:
                    raise ValueError(f"records file {str(self.path)!r} record {i + 1} is corrupt (not the last line).") from None
                # torn last line of an interrupted run: drop it
                self.path.write_text("".join(line + "\n" for line in lines[:-1]), encoding="utf-8")
        return good


def write_atomic(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file and a rename (never half a file).

    Parameters
    ----------
    path : str or Path
    data : bytes
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
