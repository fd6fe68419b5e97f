"""Safe extraction of checkpoint archives (``run1.tar.gz``, ``checkpoint_run1.tar``).

Archives come from other people's Colab sessions, so extraction trusts nothing:
every member is checked before anything is written, and then extracted with
``tarfile``'s ``filter="data"`` as a second line of defence. Refused:

- names that are absolute or contain ``..`` (path traversal);
- symlinks, hardlinks, devices, FIFOs: anything but regular files and directories;
- more than ``MAX_MEMBERS`` members;
- a declared total over ``MAX_TOTAL_BYTES`` (8 GiB: the largest GPT-2, 1558M,
  is a 6.2 GB checkpoint);
- for compressed archives, a declared total over ``MAX_RATIO`` times the
  archive's size once it exceeds ``RATIO_FLOOR_BYTES``. Float32 weights barely
  compress (gzip gets ~1.1x), so a ratio of 50 only trips on a decompression bomb.
"""

from __future__ import annotations

import logging
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from augment.errors import AugmentError

log = logging.getLogger(__name__)

MAX_TOTAL_BYTES = 8 * 1024 ** 3
MAX_MEMBERS = 10_000
MAX_RATIO = 50
RATIO_FLOOR_BYTES = 64 * 1024 ** 2
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


class UnsafeArchiveError(AugmentError):
    """An archive member could write outside the target or is implausibly large."""


@dataclass(frozen=True)
class Limits:
    max_total_bytes: int = MAX_TOTAL_BYTES
    max_members: int = MAX_MEMBERS
    max_ratio: float = MAX_RATIO
    ratio_floor_bytes: int = RATIO_FLOOR_BYTES


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _check_name(archive: Path, name: str) -> None:
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    if ".." in posix.parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} contains '..'; refusing to extract")


def _check_type(archive: Path, member: tarfile.TarInfo) -> None:
    if member.issym() or member.islnk():
        kind = "symlink" if member.issym() else "hardlink"
        raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a {kind} (to {member.linkname!r}); "
                                 "refusing to extract")
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a device, FIFO or other special file; "
                                 "refusing to extract")


def _check_size(archive: Path, member: tarfile.TarInfo, total: int, limits: Limits, compressed: bool) -> None:
    if total > limits.max_total_bytes:
        raise UnsafeArchiveError(f"{archive}: member {member.name!r} ({member.size} bytes) brings the total to "
                                 f"{total} bytes, over the {limits.max_total_bytes}-byte limit")
    size = archive.stat().st_size
    if compressed and total > limits.ratio_floor_bytes and total > limits.max_ratio * size:
        raise UnsafeArchiveError(f"{archive}: members expand to {total} bytes from a {size}-byte archive "
                                 f"(over {limits.max_ratio}x); refusing a likely decompression bomb")


def checked_members(archive: Path, tar: tarfile.TarFile, limits: Limits) -> list[tarfile.TarInfo]:
    """All members, each checked as soon as its header is read (before any data is skipped or read)."""
    compressed = not archive.name.lower().endswith(".tar")
    members, total = [], 0
    for member in tar:
        if len(members) >= limits.max_members:
            raise UnsafeArchiveError(f"{archive}: more than {limits.max_members} members")
        _check_name(archive, member.name)
        _check_type(archive, member)
        total += member.size
        _check_size(archive, member, total, limits, compressed)
        members.append(member)
    return members


def safe_extract(archive: Path, dest: Path, limits: Limits = Limits()) -> Path:
    """Extract ``archive`` into the existing directory ``dest``; nothing is written if any member fails."""
    if not hasattr(tarfile, "data_filter"):
        raise AugmentError("extracting archives safely needs Python 3.10.12+ / 3.11.4+ (tarfile filters)")
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = checked_members(archive, tar, limits)
            tar.extractall(dest, members=members, filter="data")
    except tarfile.FilterError as exc:
        raise UnsafeArchiveError(f"{archive}: {exc}; refusing to extract") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise AugmentError(f"{archive}: cannot read archive ({exc})") from None
    log.info("extracted %d members of %s", len(members), archive.name)
    return dest


def find_model_dirs(root: Path) -> list[Path]:
    """Directories under ``root`` holding a gpt-2-simple checkpoint (``hparams.json`` + an index file)."""
    found = [p.parent for p in sorted(root.rglob("hparams.json"))]
    return [d for d in found if any(d.glob("*.index"))]
