"""Output paths of the commands: checked before the work, locked, written as one set.

A command that writes files learns whether it *can* before it loads a model or starts a
solver, so a bad ``--out`` costs a second, not the solve, and never ends in a traceback.

Policy (every command with ``--out DIR``: ``min-adv-*``, ``certify``, ``explain``,
``attack``, ``compare``):

* **Checked first.** ``DIR`` is created if missing (with its parents) and a probe file is
  written into it. A path that is an existing file, that lies under a file, or that cannot be
  created or written is an :class:`~verify.errors.InvalidInputError` naming the path and the
  reason.
* **One run at a time.** The run holds ``DIR/.lock`` (an ``flock``) from the check to the end;
  a second run on the same folder is refused at once with a message naming the process that
  holds it. The lock goes with the process: on return, error, Ctrl-C or kill.
* **One run's files, never a mix.** The files are written into a fresh staging folder inside
  ``DIR``, then moved in. Before that, *every* file a previous verify run left in ``DIR`` is
  removed: those named in its manifest (``DIR/.verify-files.json``, which every run writes)
  and any file with a standard output name (:data:`OUTPUT_PATTERNS`, for folders written
  before manifests existed or by a run killed half-way). The old ``result.json`` goes first
  and the new one arrives last, just before the new manifest, so at any moment the folder
  holds files of one run only, and a ``result.json`` only beside its complete set. Files
  that verify does not write are left alone, so ``--out .`` is safe.
* A folder that the run created and never wrote (the command failed) is removed again.

Single-file outputs (``encode --out FILE``, ``export OUT``) are checked the same way (not a
folder, a folder that can be created and written) and written atomically: into a temporary
file beside the target, then renamed over it. Append-only outputs that resume (``vnncomp``'s
results CSV, ``bench``'s folder) are checked and locked, never replaced.
"""
from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Union

from .errors import InvalidInputError

#: The lock file of a folder a run writes to (the same name `verify bench` always used).
LOCK_NAME = ".lock"
#: The list of files the last run wrote into a folder.
MANIFEST_NAME = ".verify-files.json"
#: Names of the files the commands write; any of them in an output folder is a previous
#: run's and is replaced as part of the set (see the module docs).
OUTPUT_PATTERNS = ("result.json", "result.txt", "explanation_mask.npy", "adversarial*.npy",
                   "adversarial*.png", "figure*.png")
#: Written first-removed / last-added: marks a complete set.
_MARKERS = ("result.json", "result.txt")
_STAGING_PREFIX = ".verify-staging-"
_PROBE_PREFIX = ".verify-probe-"

#: What a file of an output set can be: text, bytes, an array (``.npy``: saved with
#: ``numpy.save``; ``.png``: a [0, 1] image saved as 8-bit grayscale), or a function that
#: writes the file at the path it is given (figures, solver files).
Content = Union[str, bytes, Any, Callable[[Path], Any]]


# ------------------------------------------------------------------------------------ checks

def _label(option: str, path: Path) -> str:
    return f"{option} {path}" if option else str(path)


def _file_ancestor(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` that is not a folder, if any."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def check_output_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Create the folder ``path`` if needed and prove it writable (a probe file written and
    removed). Returns it as a Path; an :class:`InvalidInputError` names the path and the
    reason when it is a file, lies under a file, or cannot be created or written."""
    path = Path(path)
    name = _label(option, path)
    if path.exists() and not path.is_dir():
        raise InvalidInputError(f"{name} is a file, not a folder: give a folder name (or move "
                                "the file away)")
    under = _file_ancestor(path)
    if under is not None:
        raise InvalidInputError(f"{name}: cannot create this folder, because {under} is a file")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"{name}: cannot create this folder ({exc.strerror or exc})") from None
    _probe(path, name)
    return path


def check_output_file(path: str | os.PathLike, option: str = "--out") -> Path:
    """Check that a file can be written at ``path``: it is not a folder, and its folder can be
    created and written (it is created if missing). Returns ``path`` as a Path."""
    path = Path(path)
    name = _label(option, path)
    if path.is_dir():
        raise InvalidInputError(f"{name} is a folder, not a file: give a file name")
    if path.exists() and not path.is_file():
        raise InvalidInputError(f"{name} exists and is not a regular file")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise InvalidInputError(f"{name}: cannot write here, because {parent} is a file")
    under = _file_ancestor(parent)
    if under is not None:
        raise InvalidInputError(f"{name}: cannot write here, because {under} is a file")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"{name}: cannot create its folder {parent} "
                                f"({exc.strerror or exc})") from None
    _probe(parent, name)
    return path


def _probe(folder: Path, name: str) -> None:
    try:
        fd, probe = tempfile.mkstemp(prefix=_PROBE_PREFIX, dir=folder)
    except OSError as exc:
        raise InvalidInputError(f"{name}: the folder {folder} is not writable (creating a file in "
                                f"it failed: {exc.strerror or exc})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


# ------------------------------------------------------------------------------------ locks

class FolderLock:
    """An exclusive, non-blocking ``flock`` on ``folder/.lock``, held until :meth:`release`
    (or until the process ends, whatever ends it). The holder's process id is written into
    the file, so a refused run can say who holds it."""

    def __init__(self, folder: str | os.PathLike, busy: str | None = None):
        """``busy``: the message of the error raised when another process holds the lock;
        ``{holder}`` in it becomes " (process N)" (default: names the folder and the holder)."""
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None
        try:
            import fcntl
        except ImportError:          # not POSIX: no locking; runs must not overlap
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InvalidInputError(f"cannot create the lock file {self.path} "
                                    f"({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" (process {holder})" if holder else ""
            message = busy or (f"{self.folder} is in use by another verify run{{holder}}; wait "
                               "for it to finish, or choose another output folder")
            raise InvalidInputError(message.replace("{holder}", who)) from None
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.ENOTSUP, errno.EOPNOTSUPP):
                os.close(fd)
                raise InvalidInputError(f"cannot lock {self.path} ({exc.strerror or exc})") from None
            os.close(fd)             # a file system without locks: go on unlocked
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        # released when this object is collected, even if nobody calls release()
        self._finalizer = weakref.finalize(self, _close_fd, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the lock up (idempotent). The lock file stays, as `verify bench`'s always did:
        removing it could let two runs lock two different files."""
        if self._fd is not None:
            self._finalizer()
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _close_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)             # closing the last descriptor drops the flock


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def exclusive(folder: str | os.PathLike, busy: str | None = None) -> Iterator[FolderLock]:
    """Create ``folder`` if needed and hold its lock for the block (see :class:`FolderLock`)."""
    folder = check_output_dir(folder, option="")
    lock = FolderLock(folder, busy)
    try:
        yield lock
    finally:
        lock.release()


# ------------------------------------------------------------------------------------ writing

def _write(content: Content, path: Path) -> None:
    """Write one file of an output set at ``path`` (see :data:`Content`)."""
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif isinstance(content, (bytes, bytearray)):
        path.write_bytes(content)
    elif callable(content):
        content(path)
    else:
        import numpy as np

        if isinstance(content, np.ndarray) and path.suffix.lower() == ".npy":
            with open(path, "wb") as f:          # a file object: np.save adds no suffix
                np.save(f, content)
        elif isinstance(content, np.ndarray) and path.suffix.lower() == ".png":
            from .data import write_png

            write_png(content, path)
        else:
            raise TypeError(f"cannot write {type(content).__name__} as {path.name}")
    if not path.is_file():
        raise InvalidInputError(f"writing {path.name} produced no file")


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _is_previous_output(name: str, listed: set[str]) -> bool:
    return name in listed or any(fnmatch.fnmatchcase(name, p) for p in OUTPUT_PATTERNS)


class OutputDir:
    """An output folder for one run: checked and locked when made, written once by
    :meth:`commit` (see the module docs for the policy)."""

    def __init__(self, path: str | os.PathLike, option: str = "--out"):
        path = Path(path)
        existed = path.is_dir()
        self.path = check_output_dir(path, option)
        self.option = option
        self.committed = False
        self._lock = FolderLock(self.path, busy=(
            f"{_label(option, self.path)} is in use by another verify run{{holder}}; wait for "
            "it to finish, or choose another folder"))
        self._created = not existed
        for stale in self.path.glob(_STAGING_PREFIX + "*"):     # left by a killed run
            shutil.rmtree(stale, ignore_errors=True)
        self._cleanup = weakref.finalize(self, _remove_if_unused, self.path, self._created)

    def commit(self, files: Mapping[str, Content]) -> list[Path]:
        """Write ``files`` (name → :data:`Content`) as this folder's one set of outputs, replacing
        every file of a previous run, then release the lock. Returns the written paths."""
        if self.committed:
            raise RuntimeError("an output folder is written once")
        for name in files:
            if Path(name).name != name or name.startswith(".") or name in (LOCK_NAME, MANIFEST_NAME):
                raise ValueError(f"bad output file name {name!r}")
        staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=self.path))
        try:
            for name, content in files.items():
                _write(content, staging / name)
                _fsync(staging / name)
            manifest = json.dumps({"files": sorted(files)}, indent=1)
            (staging / MANIFEST_NAME).write_text(manifest)
            self._swap(staging, list(files))
        except OSError as exc:
            raise InvalidInputError(f"{_label(self.option, self.path)}: writing the outputs failed "
                                    f"({exc.strerror or exc}: {exc.filename or ''})") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            self.release()
        self.committed = True
        self._cleanup.detach()
        return [self.path / name for name in files]

    def _swap(self, staging: Path, names: list[str]) -> None:
        listed: set[str] = set()
        manifest = self.path / MANIFEST_NAME
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            listed = {str(n) for n in json.loads(manifest.read_text())["files"]}
        old = sorted((p for p in self.path.iterdir()
                      if p.is_file() and _is_previous_output(p.name, listed)),
                     key=lambda p: p.name not in _MARKERS)    # result.json/.txt first
        with contextlib.suppress(FileNotFoundError):
            manifest.unlink()
        for p in old:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        for name in sorted(names, key=lambda n: n in _MARKERS):  # result.json/.txt last
            os.replace(staging / name, self.path / name)
        os.replace(staging / MANIFEST_NAME, manifest)
        _fsync(self.path)

    def release(self) -> None:
        """Release the folder's lock (idempotent; :meth:`commit` does it)."""
        self._lock.release()

    def __enter__(self) -> OutputDir:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
        if not self.committed:
            self._cleanup()


def _remove_if_unused(path: Path, created: bool) -> None:
    """A folder this run created and never wrote goes again (only if nothing else is in it)."""
    if not created:
        return
    with contextlib.suppress(OSError):
        if {p.name for p in path.iterdir()} <= {LOCK_NAME}:
            with contextlib.suppress(FileNotFoundError):
                (path / LOCK_NAME).unlink()
            path.rmdir()


class OutputFile:
    """A single output file: checked when made, written atomically by :meth:`commit`."""

    def __init__(self, path: str | os.PathLike, option: str = "--out"):
        self.path = check_output_file(path, option)
        self.option = option

    def commit(self, content: Content) -> Path:
        """Write the file (see :data:`Content`) into a temporary file beside it, then rename it
        over ``path``: readers see the old file or the new one, never a part."""
        fd, tmp = tempfile.mkstemp(prefix=".verify-tmp-", suffix="-" + self.path.name,
                                   dir=self.path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            _write(content, tmp_path)
            _fsync(tmp_path)
            os.replace(tmp_path, self.path)
        except OSError as exc:
            raise InvalidInputError(f"{_label(self.option, self.path)}: writing failed "
                                    f"({exc.strerror or exc})") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()
        return self.path


class AppendFile:
    """An append-only output file that a run resumes (``vnncomp``'s results CSV): checked,
    created if missing, and locked (an ``flock`` on the file itself) until :meth:`release`,
    so two runs cannot append the same rows twice. ``folders``: folders the run will create
    beside it, checked not to be files."""

    def __init__(self, path: str | os.PathLike, option: str = "--out",
                 folders: tuple[str | os.PathLike, ...] = ()):
        self.path = check_output_file(path, option)
        for folder in map(Path, folders):
            if folder.exists() and not folder.is_dir():
                raise InvalidInputError(f"{_label(option, self.path)}: {folder} must be a folder "
                                        "(the run writes there), but it is a file")
        self._created = not self.path.exists()
        self._fd: int | None = None
        try:
            import fcntl
        except ImportError:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InvalidInputError(f"{_label(option, self.path)}: cannot open it for writing "
                                    f"({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InvalidInputError(f"{_label(option, self.path)} is in use by another verify run; "
                                    "wait for it to finish (a re-run resumes where it stopped)") from None
        except OSError:
            pass                     # a file system without locks: go on unlocked
        self._fd = fd
        self._finalizer = weakref.finalize(self, _close_fd, fd)

    def release(self) -> None:
        """Release the lock (idempotent). A file this run created and left empty is removed."""
        if self._fd is not None:
            if self._created:
                with contextlib.suppress(OSError):
                    if self.path.stat().st_size == 0:
                        self.path.unlink()
            self._finalizer()
            self._fd = None


# ------------------------------------------------------------------------------------ entry points

def prepare_output_dir(path: str | os.PathLike | None, option: str = "--out") -> OutputDir | None:
    """The command's output folder, checked and locked before any work (None if ``path`` is
    None). Write it at the end with :meth:`OutputDir.commit`."""
    return None if path is None else OutputDir(path, option)


def prepare_output_file(path: str | os.PathLike | None, option: str = "--out") -> OutputFile | None:
    """A single output file, checked before any work (None if ``path`` is None). Write it at
    the end with :meth:`OutputFile.commit`."""
    return None if path is None else OutputFile(path, option)


def image_files(stem: str, image: Any) -> dict[str, Content]:
    """``stem.npy`` (float32, the given shape) and ``stem.png`` (8-bit grayscale) of a [0, 1]
    image: how every command saves an adversarial example."""
    import numpy as np

    image = np.asarray(image)
    return {f"{stem}.npy": image.astype(np.float32), f"{stem}.png": image}
