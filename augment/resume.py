"""Work folders that only the same work may continue.

A killed job leaves its work in a folder (checkpoints, finished rows, finished
stages) beside the key of what made it: data hashes and settings. Only
``--resume`` with the same key continues it; anything else is refused in one
line naming what changed, so the user sees which flag to put back.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from augment.config import changed_settings
from augment.errors import OutputExistsError, RunDirError
from augment.files import atomic_dir, read_json, write_json_atomic

HASH = re.compile(r"[0-9a-f]{64}")


def open_work_folder(folder: Path, key: Mapping[str, Any], *, record: str, what: str, resume: bool,
                     overwrite: bool | None) -> bool:
    """Make ``folder`` the work folder of ``key`` (kept in ``folder/record``); True when it continues earlier work.

    Earlier work is continued on ``resume`` if its key is ``key``, else refused; without ``resume`` it is
    refused, or started again on ``overwrite`` (``None``: the command has no --overwrite for this folder, so
    the message says to delete it). A new folder appears with its key inside (atomic rename): one that holds
    files but no key was not made here and is never deleted.
    """
    folder = Path(folder)
    if folder.is_file() or folder.is_dir() and any(folder.iterdir()):
        ours = (folder / record).is_file()
        if resume and ours:
            refuse_changes(folder, read_json(folder / record, f"{what} record"), key, what, overwrite)
            return True
        if not ours:
            raise OutputExistsError(f"{folder}: exists and has no {record}, so it is not the work of an "
                                    f"interrupted {what}; refusing to {'resume' if resume else 'delete'} it")
        if not overwrite:
            restart = "delete the folder" if overwrite is None else "--overwrite to start again"
            raise OutputExistsError(f"{folder}: an interrupted {what} left partial results; pass --resume to "
                                    f"continue it or {restart}")
    if folder.is_dir():
        shutil.rmtree(folder)
    with atomic_dir(folder, overwrite=True) as tmp:
        write_json_atomic(tmp / record, key)
    return False


def refuse_changes(folder: Path, before: Mapping[str, Any], now: Mapping[str, Any], what: str,
                   overwrite: bool | None = False) -> None:
    """Nothing when the interrupted work had the key ``now``, else an error naming every change
    (``name: old -> new``; hashes by their first digits)."""
    if before == now:
        return
    changes = changed_settings(_shown(before), _shown(now)) if isinstance(before, Mapping) else []
    changes = changes or ["a record written by another version"]
    restart = "delete the folder" if overwrite is None else "pass --overwrite without --resume"
    raise RunDirError(f"{folder}: the interrupted {what} used different settings ({'; '.join(changes)}); "
                      f"cannot resume ({restart} to start again)")


def _shown(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, str) and HASH.fullmatch(value):
        return value[:12] + "…"
    return value
