"""Archives from elsewhere (``run1.tar.gz``, ``checkpoint_run1.tar``): valid ones convert, malicious ones are refused."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from augment.convert import gpt2simple_to_hf
from augment.convert.archive import Limits, UnsafeArchiveError, safe_extract


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, None


MALICIOUS = {
    "dotdot": ([_file("checkpoint/run1/../../evil.txt")], "contains '..'"),
    "absolute": ([_file("/tmp/evil.txt")], "absolute path"),
    "symlink": ([_special("checkpoint/run1/link", tarfile.SYMTYPE, "/etc/passwd")], "is a symlink"),
    "hardlink": ([_special("checkpoint/run1/hard", tarfile.LNKTYPE, "/etc/passwd")], "is a hardlink"),
    "chardev": ([_special("checkpoint/run1/dev", tarfile.CHRTYPE)], "device, FIFO"),
    "blockdev": ([_special("checkpoint/run1/blk", tarfile.BLKTYPE)], "device, FIFO"),
    "fifo": ([_special("checkpoint/run1/fifo", tarfile.FIFOTYPE)], "device, FIFO"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_members_refused_and_nothing_written(case: str, tmp_path: Path) -> None:
    members, message = MALICIOUS[case]
    archive = _tar(tmp_path / "run1.tar", [_file("checkpoint/run1/hparams.json", b"{}"), *members])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match=message):
        safe_extract(archive, dest)
    assert not any(dest.iterdir()) and not (tmp_path / "evil.txt").exists()


def test_huge_declared_member_refused_before_reading(tmp_path: Path) -> None:
    """A header claiming 9 GiB (no data behind it) fails on the header, before tarfile seeks past it."""
    info = tarfile.TarInfo("checkpoint/run1/model-1.data-00000-of-00001")
    info.size = 9 * 1024 ** 3
    archive = tmp_path / "bomb.tar"
    archive.write_bytes(info.tobuf(format=tarfile.GNU_FORMAT) + bytes(1024))
    with pytest.raises(UnsafeArchiveError, match="over the 8589934592-byte limit"):
        safe_extract(archive, tmp_path)


def test_total_size_limit(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "a.tar", [_file("a", bytes(600)), _file("b", bytes(600))])
    with pytest.raises(UnsafeArchiveError, match="brings the total to 1200 bytes, over the 1000-byte limit"):
        safe_extract(archive, tmp_path, Limits(max_total_bytes=1000))


def test_compression_ratio_limit(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "zeros.tar.gz", [_file("zeros", bytes(1_000_000))], mode="w:gz")
    assert archive.stat().st_size < 10_000
    with pytest.raises(UnsafeArchiveError, match="likely decompression bomb"):
        safe_extract(archive, tmp_path, Limits(ratio_floor_bytes=1000))
    (tmp_path / "ok").mkdir()
    safe_extract(archive, tmp_path / "ok")  # under the default 64 MiB floor a high ratio is harmless
    assert (tmp_path / "ok" / "zeros").stat().st_size == 1_000_000


def test_member_count_limit(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "many.tar", [_file(f"f{i}") for i in range(5)])
    with pytest.raises(UnsafeArchiveError, match="more than 3 members"):
        safe_extract(archive, tmp_path, Limits(max_members=3))


def test_not_an_archive(tmp_path: Path) -> None:
    bad = tmp_path / "run1.tar.gz"
    bad.write_bytes(gzip.compress(b"not a tar"))
    with pytest.raises(Exception, match="cannot read archive"):
        safe_extract(bad, tmp_path)


def _gdrive_tar(model_dir: Path, workdir: Path, name: str, mode: str) -> Path:
    """What ``gpt2.copy_checkpoint_to_gdrive()`` writes: ``tar.add("checkpoint/run1")`` from the cwd."""
    run = workdir / "checkpoint" / "run1"
    run.mkdir(parents=True)
    for file in model_dir.iterdir():
        target = file.name.replace("model.ckpt", "model-12")
        (run / target).write_bytes(file.read_bytes())
    (run / "checkpoint").write_text('model_checkpoint_path: "/content/checkpoint/run1/model-12"\n')
    cwd = os.getcwd()
    try:
        os.chdir(workdir)
        with tarfile.open(workdir / name, mode) as tar:
            tar.add("checkpoint/run1")
    finally:
        os.chdir(cwd)
    return workdir / name


@pytest.mark.parametrize("name, mode", [("checkpoint_run1.tar", "w"), ("run1.tar.gz", "w:gz")])
def test_gdrive_archive_converts(g2s_dir: Path, tiny_model_dir: Path, tmp_path: Path, name: str, mode: str) -> None:
    from safetensors.numpy import load_file

    archive = _gdrive_tar(g2s_dir, tmp_path / "colab", name, mode)
    out = gpt2simple_to_hf(archive, tmp_path / "hf")
    before, after = load_file(str(tiny_model_dir / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert all(np.array_equal(after[k], before[k]) for k in after)
    assert '"checkpoint": "model-12"' in (out / "conversion.json").read_text()
