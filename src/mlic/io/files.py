"""Files: the one place that checks an input is a regular file (before anything opens it),
and the one place that creates outputs (atomically, never replacing an existing file unless
asked, with the permissions a plainly created file would get)."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from ..errors import MlicError, OutputError


def check_input_file(path: str | Path, error: type[MlicError], missing: str = "no such file") -> None:
    """Raise ``error("PATH: why")`` unless ``path`` is a regular file; ``missing`` words the
    absent case. A pipe, socket or device would block or stream forever once opened, and a
    folder is not a file, so each gets its own words rather than "no such file"."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise error(f"{path}: {missing}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise error(f"{path}: is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise error(f"{path}: not a regular file (a pipe, socket or device)")


def new_file_mode() -> int:
    """The permissions a plainly created file would get (0666 less the umask); mkstemp uses 0600."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | Path, write, force: bool = False) -> Path:
    """Create ``path`` through a temporary file in the same folder and an atomic rename.

    ``write(fileobj)`` fills the temporary file (opened for binary writing). An existing
    ``path`` is never replaced unless ``force``; an interruption leaves no partial output, and
    a reader never sees a half-written file.
    """
    path = Path(path)
    if path.exists() and not force:
        raise OutputError(f"{path} exists; use --force to overwrite")
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write in {folder}: {exc.strerror or exc}") from None
    try:
        os.chmod(tmp, new_file_mode())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
