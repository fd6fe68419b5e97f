"""A work folder is continued only by the work that made it; every refusal names what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from augment.errors import OutputExistsError, RunDirError
from augment.resume import open_work_folder

KEY = {"config": {"seed": 1, "n": 5}, "rows": "a" * 64}


def open_(folder: Path, key=KEY, resume=False, overwrite=False) -> bool:
    return open_work_folder(folder, key, record="key.json", what="job", resume=resume, overwrite=overwrite)


def test_a_new_folder_holds_its_key_and_resumes_with_it(tmp_path: Path):
    folder = tmp_path / "work"
    assert open_(folder, resume=True) is False
    assert json.loads((folder / "key.json").read_text()) == KEY
    (folder / "done.txt").write_text("kept")
    assert open_(folder, resume=True) is True
    assert (folder / "done.txt").read_text() == "kept"


def test_a_changed_setting_or_data_is_named(tmp_path: Path):
    folder = tmp_path / "work"
    open_(folder)
    changed = {"config": {"seed": 2, "n": 5}, "rows": "b" * 64}
    with pytest.raises(RunDirError) as refused:
        open_(folder, changed, resume=True)
    assert str(refused.value) == (f"{folder}: the interrupted job used different settings (config.seed: 1 -> 2; "
                                  f"rows: '{'a' * 12}…' -> '{'b' * 12}…'); cannot resume (pass --overwrite "
                                  "without --resume to start again)")
    with pytest.raises(RunDirError, match=r"cannot resume \(delete the folder to start again\)$"):
        open_work_folder(folder, changed, record="key.json", what="job", resume=True, overwrite=None)


def test_leftover_work_needs_resume_or_overwrite(tmp_path: Path):
    folder = tmp_path / "work"
    open_(folder)
    (folder / "done.txt").write_text("old")
    with pytest.raises(OutputExistsError, match="an interrupted job left partial results; pass --resume to "
                                                "continue it or --overwrite to start again$"):
        open_(folder)
    with pytest.raises(OutputExistsError, match="pass --resume to continue it or delete the folder$"):
        open_work_folder(folder, KEY, record="key.json", what="job", resume=False, overwrite=None)
    assert open_(folder, {"config": {}}, overwrite=True) is False
    assert sorted(p.name for p in folder.iterdir()) == ["key.json"]


def test_a_folder_it_did_not_make_is_never_deleted_or_resumed(tmp_path: Path):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    for resume in (False, True):
        with pytest.raises(OutputExistsError, match=f"has no key.json, so it is not the work of an interrupted "
                                                    f"job; refusing to {'resume' if resume else 'delete'} it"):
            open_(folder, resume=resume, overwrite=True)
    assert (folder / "thesis.tex").read_text() == "precious"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert open_(empty) is False and (empty / "key.json").is_file()
