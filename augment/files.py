"""Files: atomic outputs, safe names, content hashes, provenance, and one writer per output.

Outputs feed training sets, so a crash must never leave a file that looks
finished: everything is written to a temporary sibling and renamed into place.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import inspect
import json
import logging
import os
import platform
import re
import shlex
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from augment.errors import AugmentError, LockedError, OutputExistsError

log = logging.getLogger(__name__)

PARTIAL_MARKER = ".partial-"


def check_output_path(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing output unless asked, before any work starts."""
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: already exists; pass --overwrite to replace it")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise AugmentError(f"{parent}: is not a directory, cannot write {path.name} there")


_REQUIRED: Any = object()


def read_json(path: Path, what: str = "file", default: Any = _REQUIRED) -> Any:
    """A JSON file; if it is missing or unreadable, ``default`` when given, else one line naming
    the file and what is wrong (missing, not UTF-8, not JSON)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        if default is not _REQUIRED:
            return default
        if isinstance(exc, FileNotFoundError):
            raise AugmentError(f"{path}: {what} not found") from None
        detail = exc.strerror if isinstance(exc, OSError) else exc
        raise AugmentError(f"{path}: corrupt {what} ({detail})") from None


def _partial_prefix(path: Path) -> str:
    return f".{path.name}{PARTIAL_MARKER}{os.getpid()}-"


def sweep_partials(path: Path) -> None:
    """Delete temp siblings of ``path`` left by killed processes (their pid is in the name).

    SIGKILL runs no cleanup, so this happens on the next write instead; a sibling
    whose process still runs (or that we cannot judge) is left alone.
    """
    for stale in path.parent.glob(f".{glob.escape(path.name)}{PARTIAL_MARKER}*"):
        pid = stale.name[len(f".{path.name}{PARTIAL_MARKER}"):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _tmp_sibling(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_partials(path)
    fd, name = tempfile.mkstemp(prefix=_partial_prefix(path), dir=path.parent)
    os.close(fd)
    os.chmod(name, 0o644)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary file path that replaces ``path`` only if the block succeeds."""
    path = Path(path)
    if not overwrite:
        check_output_path(path, overwrite=False)
    try:
        tmp = _tmp_sibling(path)
    except OSError as exc:
        raise AugmentError(f"{path}: cannot write here ({exc.strerror})") from exc
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
            raise AugmentError(f"{path}: write failed ({exc.strerror or exc})") from exc
        raise


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_jsonl_atomic(path: Path, records: Iterable[Mapping[str, Any]], overwrite: bool = True) -> None:
    """One JSON object per line, UTF-8 as is; numpy scalars become plain numbers."""
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False, default=_plain) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """What ``write_jsonl_atomic`` wrote, values as written (pandas' reader would guess types: label "1" -> 1)."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


@contextlib.contextmanager
def atomic_dir(path: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``path`` only if the block succeeds.

    A killed process leaves only a ``.NAME.partial-*`` sibling, never a
    directory at ``path`` that could be mistaken for a finished one.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: already exists; pass --overwrite to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_partials(path)
        tmp = Path(tempfile.mkdtemp(prefix=_partial_prefix(path), dir=path.parent))
    except OSError as exc:
        raise AugmentError(f"{path}: cannot write here ({exc.strerror or exc})") from exc
    os.chmod(tmp, 0o755)
    try:
        yield tmp
        _replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace_dir(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` to ``path``; an existing ``path`` is swapped out and restored if the rename fails."""
    try:
        if not path.exists():
            os.replace(tmp, path)
            return
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            os.replace(old, path)
            raise
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise AugmentError(f"{path}: write failed ({exc.strerror or exc})") from exc


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def slug(name: str) -> str:
    """A file name for any label or name; unsafe names get a short hash suffix, so two names never share one."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip(".-")
    if safe == name and safe and not safe.startswith("_"):
        return safe
    return f"{safe or 'label'}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def hash_dir(path: Path, patterns: tuple[str, ...] = ("*.json", "*.safetensors", "*.txt")) -> str:
    """A content hash of a model directory's weights and configs (not its checkpoints)."""
    digest = hashlib.sha256()
    for pattern in patterns:
        for file in sorted(Path(path).glob(pattern)):
            digest.update(file.name.encode())
            digest.update(sha256_file(file).encode())
    return digest.hexdigest()


def hash_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def package_versions(names: tuple[str, ...] = ("augment", "torch", "transformers", "accelerate",
                                                 "datasets", "pandas", "numpy", "scikit-learn")) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance(config: Any, **extra: Any) -> dict[str, Any]:
    """What is needed to reproduce an artefact: config, versions, machine, command."""
    return {
        "config": config,
        "versions": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "argv": sys.argv,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }


# --- one writer per output -------------------------------------------------------------------------


def lock_path(path: Path) -> Path:
    """The lock beside an output or run directory: ``.NAME.lock``."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Run the block as the only process writing ``path``; another one is refused, naming the holder.

    The lock is an ``flock`` on ``.NAME.lock``, which the kernel drops when its process dies,
    however it dies: a killed job never leaves a lock that blocks the next one (a pid file
    would, and pids get reused). The file holds the holder's pid, host and command, for the
    message only. Where no lock file can be made (the folder is missing and cannot be created,
    a read-only or lock-less filesystem) the block runs unlocked and its own write reports
    the problem.
    """
    lock = lock_path(path)
    created = _make_parents(lock.parent)
    fd = _acquire(lock, path) if created is not None else None
    try:
        yield
    finally:
        if fd is not None:
            lock.unlink(missing_ok=True)  # while still held, so no one locks a file about to vanish
            os.close(fd)
        for folder in reversed(created or []):  # folders made only for the lock, if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()


def _make_parents(folder: Path) -> list[Path] | None:
    """Create ``folder`` and its missing parents; the ones created (for removal), or None if impossible."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    try:
        for item in reversed(missing):
            item.mkdir()
    except OSError:
        return None
    return missing


def _acquire(lock: Path, path: Path) -> int | None:
    import fcntl

    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise LockedError(f"{path}: in use by {holder}; wait for it to finish or stop it "
                              f"(the lock is {lock}, released when that process ends)") from None
        except OSError as exc:
            os.close(fd)
            log.warning("%s: cannot lock (%s); not guarding against a second writer", lock, exc.strerror)
            return None
        if _same_file(fd, lock):
            _write_holder(fd)
            return fd
        os.close(fd)  # the holder released and removed it between our open and flock: take a fresh one


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def _write_holder(fd: int) -> None:
    started = Path(sys.argv[0]).name if sys.argv else "augment"
    command = shlex.join(["augment" if started in ("__main__.py", "cli.py") else started, *sys.argv[1:]])
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
            "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 1 << 16, 0))
        return f"pid {info['pid']} on {info['host']} since {info['since']} ({info['command']})"
    except (ValueError, KeyError, TypeError, OSError):
        return "another process"


F = TypeVar("F", bound=Callable[..., Any])


def holds_lock(param: str) -> Callable[[F], F]:
    """Run the decorated function holding the lock on the path it is given as ``param``.

    Under a launcher (torchrun, accelerate) only rank 0 takes it: the other ranks are
    the same job. The rank is the ``comm`` argument's when there is one, else ``$RANK``.
    """
    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def locked(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs).arguments
            rank = getattr(bound.get("comm"), "rank", None)
            rank = int(os.environ.get("RANK", "0")) if rank is None else rank
            with exclusive(Path(bound[param])) if rank == 0 else contextlib.nullcontext():
                return fn(*args, **kwargs)
        return locked  # type: ignore[return-value]
    return decorate
