"""Durable file writes, shared by results, checkpoints and figures, and output-path checks.

:func:`write_atomically` is the one way plastinet writes a file: the contents go to a
temporary file with a unique name in the target's directory
(``.<name>.<host>-<pid>.<random>.tmp``, ``<host>`` a hash of the machine's name),
which is flushed and ``fsync``-ed, renamed over the target with :func:`os.replace`, and then
the directory is ``fsync``-ed so that the rename itself survives a power cut. A crash, a
``SIGKILL`` or a full disk at any point leaves either the previous file or the new one at the
target, never a torn or mixed file; concurrent writers of the same target each write their
own temporary file, and the target ends up holding one writer's complete contents.

A process killed mid-write leaves its temporary file behind; the next write or resume of the
same target removes such leftovers (:func:`clean_stale_temporaries`): only files of exactly
this naming pattern written on this machine, and only those of processes that no longer run
(or of this process, when no write of it is using them); temporaries of other machines sharing
the directory are left alone.

:func:`check_output_path` checks an output path *before* a long computation (valid name,
suffix, a writable directory), so that a bad ``--out`` is refused at once instead of after the
run.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import socket
import tempfile
import threading
from pathlib import Path
from typing import Callable, Sequence

from plastinet.errors import ValidationError, WriteError

__all__ = ["write_atomically", "clean_stale_temporaries", "check_output_path", "temporary_pattern"]

_active: set[str] = set()          # temporary files this process is writing right now
_lock = threading.Lock()
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def temporary_pattern(path: str | os.PathLike) -> re.Pattern[str]:
    """The names of :func:`write_atomically`'s temporary files for ``path``.

    Group 1 is the hash of the writing machine's name, group 2 the writing process's id.
    """
    return re.compile(r"\." + re.escape(Path(path).name) + r"\.([0-9a-f]{8})-(\d+)\.[A-Za-z0-9_]+\.tmp")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True                 # exists (another user's) or cannot tell: keep its file
    return True


def clean_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files that interrupted writes of ``path`` left behind.

    Only names matching :func:`temporary_pattern` in ``path``'s directory are considered,
    and of those only the ones written on this machine whose process is gone (or is this
    process, which is not writing them now). Errors are ignored: cleaning up is best effort.

    Returns
    -------
    list of Path
        The files removed.
    """
    path = Path(path)
    pattern = temporary_pattern(path)
    removed = []
    try:
        names = os.listdir(path.parent if str(path.parent) else ".")
    except OSError:
        return removed
    prefix = f".{path.name}."
    for name in names:
        found = pattern.fullmatch(name) if name.startswith(prefix) else None
        if found is None:
            continue
        tmp = path.parent / name
        if found.group(1) != _HOST:
            continue
        pid = int(found.group(2))
        with _lock:
            busy = str(tmp) in _active
        if busy or (pid != os.getpid() and _process_alive(pid)):
            continue
        try:
            os.unlink(tmp)
            removed.append(tmp)
        except OSError:
            pass
    return removed


def _file_mode() -> int:
    """Permission bits of a new file under the current umask (``mkstemp`` would give 0600).

    The umask is read from ``/proc`` where there is one: setting it to read it back would
    briefly change it for every thread of the process.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            umask = next(int(line.split()[1], 8) for line in fh if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        with _lock:
            umask = os.umask(0o077)
            os.umask(umask)
    return 0o666 & ~umask


def _fsync_path(path: str, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:               # some platforms cannot open directories: nothing to sync
            return
        raise
    try:
        os.fsync(fd)
    except OSError as err:
        if not (directory and err.errno in (errno.EINVAL, errno.EBADF, errno.ENOTSUP)):
            raise
    finally:
        os.close(fd)


def write_atomically(path: str | os.PathLike, contents: bytes | Callable[[str], None]) -> Path:
    """Write a file durably and atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The destination (its directory is created if needed).
    contents : bytes or callable
        The complete contents, or a function that writes them to the file name it is given
        (e.g. ``lambda tmp: ds.to_netcdf(tmp)``).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValidationError
        If ``path`` contains a NUL character.
    WriteError
        If the file cannot be written (disk full, read-only or missing directory, ``path``
        is a directory, a name too long...). Nothing is left behind, and an existing file at
        ``path`` is unchanged.
    """
    text = os.fspath(path)
    if "\0" in text:
        raise ValidationError("write", "path", text, "a file name without NUL characters")
    path = Path(text)
    directory = path.parent
    tmp = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        clean_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.{_HOST}-{os.getpid()}.", suffix=".tmp")
        with _lock:
            _active.add(tmp)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _file_mode())
        if isinstance(contents, (bytes, bytearray, memoryview)):
            with os.fdopen(fd, "wb") as fh:
                fh.write(contents)
                fh.flush()
                os.fsync(fh.fileno())
        else:
            os.close(fd)
            contents(tmp)
            _fsync_path(tmp)
        os.replace(tmp, path)
        with _lock:
            _active.discard(tmp)
        tmp = None
        _fsync_path(str(directory), directory=True)
    except OSError as err:
        raise WriteError(path, err.strerror or str(err)) from err
    finally:
        if tmp is not None:
            with _lock:
                _active.discard(tmp)
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def _name_max(directory: Path) -> int:
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def check_output_path(path: str | os.PathLike, *, obj: str, parameter: str,
                      suffixes: Sequence[str] | None = None, directory: bool = False) -> Path:
    """Check, before any work, that ``path`` can be written; create nothing.

    Parameters
    ----------
    path : str or os.PathLike
        The output file (or directory, with ``directory=True``).
    obj, parameter : str
        Who asks and for which argument (named in the error), e.g. ``"plastinet run"``, ``"--out"``.
    suffixes : sequence of str, optional
        Allowed file-name suffixes, e.g. ``(".nc",)``.
    directory : bool
        ``path`` is an output directory (it may exist) rather than a file.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValidationError
        Empty name, NUL character, wrong suffix, a name longer than the file system allows,
        an existing directory where a file is wanted (or a file where a directory is), a
        parent that is not a directory, or a directory in which no file can be created.
    """
    text = os.fspath(path)
    if not text or "\0" in text:
        raise ValidationError(obj, parameter, text, "expected a file name without NUL characters")
    path = Path(text)
    if suffixes is not None and path.suffix not in suffixes:
        raise ValidationError(obj, parameter, text, "expected a name ending in " + " or ".join(suffixes))
    ancestor = path.absolute()
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    name_max = _name_max(ancestor if ancestor.is_dir() else ancestor.parent)
    for part in path.parts:
        if len(os.fsencode(part)) > name_max:
            raise ValidationError(obj, parameter, text,
                                  f"each name in the path may have at most {name_max} bytes")
    if directory:
        if path.exists() and not path.is_dir():
            raise ValidationError(obj, parameter, text, "is a file; expected a directory (existing or new)")
    elif path.is_dir():
        raise ValidationError(obj, parameter, text, "is a directory; expected a file name")
    if not ancestor.is_dir():
        raise ValidationError(obj, parameter, text, f"{ancestor} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(dir=ancestor, prefix=".plastinet-write-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValidationError(obj, parameter, text,
                              f"cannot create files in {ancestor} ({err.strerror or err})") from None
    return path
