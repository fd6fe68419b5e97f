"""Data files as they are shipped: plain, compressed (.gz, .bz2, .xz, .zst) or inside a .zip.

Sentiment140 is distributed as ``trainingandtestdata.zip`` holding two CSVs;
corpora often come as ``train.csv.gz``. Every reader takes a ``Source``: the
bytes to parse and the inner file name whose extension tells the format, so
auto-detection (Sentiment140 included) works the same inside an archive.
Nothing is extracted to disk; a zip member with an absolute or ``..`` path is
refused anyway (the archive was not made by a tool we trust), as is a file that
decompresses past ``MAX_BYTES``.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from augment.errors import DataError, MissingDependencyError

COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
MAX_BYTES = 8 << 30  # 8 GiB decompressed: Sentiment140 is 0.24 GiB


@dataclass(frozen=True)
class Source:
    """A data file to parse: a plain ``path``, or ``data`` decompressed / taken out of an archive."""

    name: str                  # for messages: 'train.csv.gz', 'trainingandtestdata.zip:training.csv'
    inner: str                 # the file name whose extension says the format ('train.csv')
    path: Path | None = None
    data: bytes | None = None

    def read(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()  # type: ignore[union-attr]

    def head(self, size: int) -> bytes:
        if self.data is not None:
            return self.data[:size]
        with open(self.path, "rb") as fh:  # type: ignore[arg-type]
            return fh.read(size)

    def binary(self) -> Path | IO[bytes]:
        """What a reader that wants a file (Parquet) can open."""
        return self.path if self.path is not None else io.BytesIO(self.data or b"")


def open_source(path: Path, member: str | None = None, data_suffixes: tuple[str, ...] = ()) -> Source:
    """``path`` as a ``Source``; ``member`` picks the file inside a zip (default: its only data file)."""
    suffix = path.suffix.lower()
    if member is not None and suffix != ".zip":
        raise DataError(f"{path}: --member applies to .zip archives only")
    if suffix == ".zip":
        return _from_zip(path, member, data_suffixes)
    if suffix in COMPRESSIONS:
        return Source(str(path), path.name[: -len(suffix)], data=_decompress(path, suffix))
    return Source(str(path), path.name, path=path)


def _decompress(path: Path, suffix: str) -> bytes:
    opener = _openers()[suffix]
    try:
        with opener(path) as fh:
            data = _read_capped(fh, str(path))
    except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot decompress as {suffix[1:]} ({exc})") from None
    return data


def _openers() -> dict[str, Callable[[Path], Any]]:
    return {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open, ".zst": _zstd_open}


def _zstd_open(path: Path) -> Any:
    try:
        import zstandard
    except ImportError:
        raise MissingDependencyError(f"{path}: reading .zst files needs the zstandard package "
                                     "(pip install zstandard)") from None
    try:
        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    except zstandard.ZstdError as exc:
        raise OSError(str(exc)) from None


def _read_capped(fh: IO[bytes], name: str) -> bytes:
    chunks, total = [], 0
    while chunk := fh.read(1 << 24):
        total += len(chunk)
        if total > MAX_BYTES:
            raise DataError(f"{name}: decompresses to more than {MAX_BYTES >> 30} GiB; decompress it yourself")
        chunks.append(chunk)
    return b"".join(chunks)


def _from_zip(path: Path, member: str | None, data_suffixes: tuple[str, ...]) -> Source:
    try:
        with zipfile.ZipFile(path) as zf:
            files = [info for info in zf.infolist() if not info.is_dir()]
            _refuse_unsafe_names(path, files)
            info = _pick_member(path, files, member, data_suffixes)
            if info.file_size > MAX_BYTES:
                raise DataError(f"{path}: {info.filename} is {info.file_size >> 30} GiB uncompressed; "
                                "extract it yourself")
            data = zf.read(info)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path}: not a readable zip archive ({exc})") from None
    except (RuntimeError, NotImplementedError) as exc:  # encrypted, or an unsupported compression
        raise DataError(f"{path}: cannot read from the archive ({exc})") from None
    return Source(f"{path}:{info.filename}", PurePosixPath(info.filename).name, data=data)


def _refuse_unsafe_names(path: Path, files: list[zipfile.ZipInfo]) -> None:
    for info in files:
        name = info.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts or (parts and parts[0].endswith(":")):
            raise DataError(f"{path}: member '{info.filename}' has an absolute or '..' path; refusing the "
                            "archive (it may try to write outside its folder)")


def _pick_member(path: Path, files: list[zipfile.ZipInfo], member: str | None,
                 data_suffixes: tuple[str, ...]) -> zipfile.ZipInfo:
    if member is not None:
        found = [i for i in files if i.filename == member] or \
                [i for i in files if PurePosixPath(i.filename).name == member]
        if len(found) != 1:
            names = ", ".join(i.filename for i in files) or "nothing"
            what = "no member" if not found else "several members"
            raise DataError(f"{path}: {what} named '{member}'; the archive holds {names}")
        return found[0]
    candidates = [i for i in files if _is_data_file(i.filename, data_suffixes)]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise DataError(f"{path}: holds no data file ({', '.join(data_suffixes)}); it holds "
                        f"{', '.join(i.filename for i in files) or 'nothing'}")
    raise DataError(f"{path}: holds {len(candidates)} data files ({', '.join(i.filename for i in candidates)}); "
                    "pass --member NAME to pick one")


def _is_data_file(name: str, data_suffixes: tuple[str, ...]) -> bool:
    """Data files only: not folders' metadata (``__MACOSX/``, ``.DS_Store``), not READMEs."""
    pure = PurePosixPath(name)
    if pure.name.startswith(".") or "__MACOSX" in pure.parts:
        return False
    return pure.suffix.lower() in data_suffixes
