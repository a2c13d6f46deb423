"""Exclusive, verified, atomic replacement of the user's workbook file (SPEC §10).

One writer at a time: an OS lock (``fcntl.flock`` / ``msvcrt.locking``) on a small
file beside the workbook, held for the whole read-modify-write; the lock file says
who holds it (command, user, host, process, since when) so a second run can say so.
Excel's owner file (``~$Book.xlsm``) stops a write too, naming the user Excel wrote
in it.

Verified: the workbook's size, modification time and SHA-256 are taken when it is
read and compared again after the new package is compressed, immediately before
the rename; a save by Excel, OneDrive or a colleague in between stops the write.

Identity kept: a symlink's target is replaced (the link stays); mode, owner and
group are copied; a read-only file or a file with other hard links is refused with
a message. The new bytes go to an anonymous file in the target's folder
(``O_TMPFILE``) that gets a name only for the instant before the rename, are
fsynced, renamed over the target, and the folder is fsynced. A run killed at any
point leaves the old or the new workbook; a staging name left by a kill in that
instant is removed by the next writer, which holds the lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import getpass
import hashlib
import os
import socket
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from perseat_addin.errors import PerseatError, os_error_text

LOCK_WAIT_SECONDS = 30.0
"""How long a writer waits for another perseat run to finish (``PERSEAT_LOCK_WAIT`` overrides)."""

_STAGING = ".perseat-staging"
_LOCK_SUFFIX = ".perseat-lock"


class WriteRefused(PerseatError):
    """The workbook cannot be written now (held, changed, read-only…); nothing was written."""


@dataclass(frozen=True)
class Stamp:
    """What identifies the bytes of a file as read: size, modification time, SHA-256."""

    size: int
    mtime_ns: int
    sha256: str

    def when(self) -> str:
        """The modification time, as a user reads it."""
        return dt.datetime.fromtimestamp(self.mtime_ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")


def real_path(path: str | Path) -> Path:
    """The file a path names, symlinks resolved (a link loop or a missing file says so)."""
    p = Path(path)
    try:
        return Path(os.path.realpath(p, strict=True))
    except FileNotFoundError:
        raise PerseatError(f"{p}: no such file") from None
    except OSError as exc:  # ELOOP and the like
        raise PerseatError(f"{p}: cannot be opened ({exc.strerror or exc})") from None


def read_stamped(path: Path) -> tuple[bytes, Stamp]:
    """The file's bytes and their stamp, read in one go."""
    with path.open("rb") as f:
        st = os.fstat(f.fileno())
        data = f.read()
    return data, Stamp(len(data), st.st_mtime_ns, hashlib.sha256(data).hexdigest())


def stamp_of(path: Path) -> Stamp | None:
    """The stamp of the file on disk now (None if it cannot be read)."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            return None
        h = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError:
        return None
    return Stamp(st.st_size, st.st_mtime_ns, h.hexdigest())


def excel_owner(path: Path, *also: Path) -> str | None:
    """Who has the workbook open in Excel, from its owner file ``~$NAME`` (None when there is none)."""
    names = {f"~${path.name}", f"~${path.name[2:]}"} if len(path.name) > 2 else {f"~${path.name}"}
    for folder in {path.parent, *(p.parent for p in also)}:
        for n in sorted(names):
            owner = folder / n
            if owner.is_file():
                return f"{_owner_name(owner) or 'someone'} ({owner})"
    return None


def _owner_name(owner: Path) -> str:
    """The user name Excel writes at the start of its owner file (a length byte, then the name)."""
    try:
        head = owner.read_bytes()[:165]
    except OSError:
        return ""
    if head and 0 < head[0] <= 54 and len(head) > head[0]:
        name = head[1:1 + head[0]].decode("cp1252", "replace").strip("\x00 ")
        if name.isprintable():
            return name
    return ""


class WorkbookGuard:
    """The lock and the checks around one read-modify-write of a workbook file.

    ``with WorkbookGuard(path, "import") as g:`` takes the lock (waiting up to
    :data:`LOCK_WAIT_SECONDS` for another perseat run), refuses a workbook Excel
    has open, and reads the bytes and their stamp (:attr:`data`); :meth:`replace`
    writes new bytes in their place, verified and atomically."""

    def __init__(self, path: str | Path, purpose: str, *, wait: float | None = None):
        self.path = Path(path)
        self.purpose = purpose
        self.target = real_path(self.path)
        self.wait = _wait_seconds() if wait is None else wait
        self._lock_fd: int | None = None
        self._lock_path = self.target.with_name(f".{self.target.name}{_LOCK_SUFFIX}")
        self.data = b""
        self.stamp: Stamp | None = None

    # -- the lock ---------------------------------------------------------

    def __enter__(self) -> WorkbookGuard:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock (or say who holds it), clear staging names a killed run left, check Excel, read."""
        if self._lock_fd is not None:
            return
        self._refuse_unwritable()
        self._lock_fd = _lock(self._lock_path, self.wait, self.path)
        try:
            if sys.platform != "win32":  # Windows locks the byte range, so the holder's text cannot be shared
                os.ftruncate(self._lock_fd, 0)
                os.lseek(self._lock_fd, 0, os.SEEK_SET)
                os.write(self._lock_fd, _holder(self.purpose).encode("utf-8", "replace"))
            _clear_staging(self.target)
            owner = excel_owner(self.target, self.path)
            if owner:
                raise WriteRefused(_excel_text(self.path, owner))
            self.data, self.stamp = read_stamped(self.target)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Let go of the lock and remove the lock file (a run waiting for it then locks a fresh one)."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is None:
            return
        try:
            if sys.platform != "win32":
                os.ftruncate(fd, 0)
                os.unlink(self._lock_path)  # a waiting run re-checks the name after locking (see _lock)
        except OSError:
            pass
        finally:
            _unlock(fd)
            os.close(fd)

    # -- the write --------------------------------------------------------

    def replace(self, data: bytes) -> None:
        """Put ``data`` in place of the workbook: only if it is unchanged since it was read and Excel does
        not have it open, keeping its identity, atomically."""
        if self._lock_fd is None or self.stamp is None:
            raise PerseatError(f"{self.path}: internal error — the workbook was not locked before writing")
        self._refuse_unwritable()
        st = os.stat(self.target)
        staged = _stage(self.target, data, st)
        try:
            self.verify()
            _rename(staged, self.target)
        finally:
            staged.discard()
        self.stamp = Stamp(len(data), os.stat(self.target).st_mtime_ns, hashlib.sha256(data).hexdigest())
        self.data = data

    def verify(self) -> None:
        """Refuse when Excel has the workbook open or it changed on disk since it was read."""
        owner = excel_owner(self.target, self.path)
        if owner:
            raise WriteRefused(_excel_text(self.path, owner))
        now = stamp_of(self.target)
        if self.stamp is not None and now != self.stamp:
            when = f" (saved {now.when()})" if now is not None else ""
            raise WriteRefused(f"{self.path} changed on disk since perseat read it at {self.stamp.when()}{when} — "
                               "saved in Excel, synced by OneDrive or changed by a colleague; nothing was written. "
                               "Run the command again to work on the saved version.")

    def _refuse_unwritable(self) -> None:
        try:
            st = os.stat(self.target)
        except OSError as exc:
            raise PerseatError(f"{self.path}: cannot be read ({exc.strerror})") from None
        if not (st.st_mode & 0o222) or (os.name != "nt" and os.geteuid() != 0 and
                                         not os.access(self.target, os.W_OK)):
            raise WriteRefused(f"{self.path} is read-only; nothing was written. Make it writable (Properties ▸ "
                               "untick Read-only, or chmod u+w) if it should change, then run again.")
        if st.st_nlink > 1:
            raise WriteRefused(f"{self.path} has {st.st_nlink} hard links (the same file under other names); "
                               "replacing it would leave the other names on the old version, so nothing was "
                               "written. Keep one name (copy the file, delete the links), then run again.")
        folder = self.target.parent
        if os.name != "nt" and os.geteuid() != 0 and not os.access(folder, os.W_OK | os.X_OK):
            raise WriteRefused(f"{self.path}: its folder {folder} is read-only for you, so the workbook cannot be "
                               "replaced; nothing was written. Ask for write access to the folder.")


def _wait_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("PERSEAT_LOCK_WAIT", LOCK_WAIT_SECONDS)))
    except ValueError:
        return LOCK_WAIT_SECONDS


def _holder(purpose: str) -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in the environment
        user = "someone"
    since = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return f"perseat {purpose} by {user} on {socket.gethostname()} (process {os.getpid()}) since {since}"


def _excel_text(path: Path, owner: str) -> str:
    return (f"{path} is open in Excel by {owner}; nothing was written. Close it there (or use the Per-Seat "
            "Billing ribbon in that Excel), then run again. If nobody has it open, delete that ~$ file.")


if sys.platform == "win32":  # pragma: no cover - Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _lock(lock_path: Path, wait: float, shown: Path) -> int:
    """An exclusive lock on ``lock_path`` (created if needed), waiting up to ``wait`` seconds."""
    import time

    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise WriteRefused(f"{shown}: cannot create the lock file {lock_path} ({exc.strerror}); nothing was "
                               "written. The workbook's folder must be writable.") from None
        if _try_lock(fd):
            try:  # the holder before us may have removed the name after we opened it: lock the live name
                same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
            except OSError:
                same = False
            if same:
                return fd
            _unlock(fd)
            os.close(fd)
            continue
        holder = _read_holder(fd)
        for _ in range(0 if holder or sys.platform == "win32" else 25):
            time.sleep(0.01)  # the holder has just locked and is writing who it is: give it a moment to say
            holder = _read_holder(fd)
            if holder:
                break
        os.close(fd)
        if time.monotonic() >= deadline:
            raise WriteRefused(f"{shown} is being changed by another run ({holder or 'perseat'}); nothing was "
                               "written. Wait for it to finish, then run again.")
        if not told and wait >= 1:
            print(f"waiting for {holder or 'another perseat run'} to finish with {shown}…", file=sys.stderr)
            told = True
        time.sleep(0.05)


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 400).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _clear_staging(target: Path) -> None:
    """Remove staging names a killed writer left beside ``target`` (the caller holds the lock)."""
    prefix = f".{target.name}{_STAGING}"
    try:
        names = os.listdir(target.parent)
    except OSError:
        return
    for n in names:
        if n.startswith(prefix):
            with contextlib.suppress(OSError):
                os.unlink(target.parent / n)


class _Staged:
    """New bytes written and fsynced in the target's folder, not yet in place."""

    def __init__(self, fd: int, name: Path | None, target: Path, data: bytes, st: os.stat_result):
        self.fd = fd
        self.name = name
        self.target = target
        self.data = data
        self.st = st

    def link(self) -> Path:
        """A name for the staged file (an anonymous O_TMPFILE file gets one now: ``linkat`` with
        AT_SYMLINK_FOLLOW on its /proc/self/fd entry; where that is refused, the bytes go to a named file)."""
        if self.name is None:
            name = self.target.with_name(f".{self.target.name}{_STAGING}-{os.getpid()}")
            root = os.open("/", os.O_RDONLY)
            try:
                os.link(f"/proc/self/fd/{self.fd}", name, src_dir_fd=root, follow_symlinks=True)
            except OSError:
                os.close(self.fd)
                self.fd = -1
                self.fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                self.name = name
                _fill(self.fd, self.data, self.st)
            finally:
                os.close(root)
            self.name = name
        return self.name

    def discard(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.name is not None and self.name.exists():
            with contextlib.suppress(OSError):
                os.unlink(self.name)


def _stage(target: Path, data: bytes, st: os.stat_result) -> _Staged:
    """Write ``data`` to a new file beside ``target`` with its mode, owner and group, fsynced."""
    folder = target.parent
    fd, name = -1, None
    tmpfile = getattr(os, "O_TMPFILE", 0)
    try:
        if tmpfile and os.path.exists("/proc/self/fd"):
            try:
                fd = os.open(folder, tmpfile | os.O_WRONLY, 0o600)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
                    raise
                fd = -1
        if fd < 0:
            name = target.with_name(f".{target.name}{_STAGING}-{os.getpid()}")
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
        staged = _Staged(fd, name, target, data, st)
    except OSError as exc:
        raise _write_error(target, exc) from None
    try:
        _fill(fd, data, st)
    except OSError as exc:
        staged.discard()
        raise _write_error(target, exc) from None
    return staged


def _fill(fd: int, data: bytes, st: os.stat_result) -> None:
    """Write ``data`` to ``fd`` with the mode, owner and group of ``st``, and fsync it."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    if hasattr(os, "fchown"):
        try:
            os.fchown(fd, st.st_uid, st.st_gid)
        except PermissionError:
            with contextlib.suppress(PermissionError):
                os.fchown(fd, -1, st.st_gid)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, st.st_mode & 0o7777)
    os.fsync(fd)


def _rename(staged: _Staged, target: Path) -> None:
    try:
        name = staged.link()
        os.replace(name, target)
    except OSError as exc:
        raise _write_error(target, exc) from None
    staged.name = None
    if hasattr(os, "O_DIRECTORY"):
        try:
            dfd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        try:
            os.fsync(dfd)
        except OSError:
            pass
        finally:
            os.close(dfd)


def _write_error(target: Path, exc: OSError) -> PerseatError:
    """What an operating-system error while writing means for the user."""
    return PerseatError(f"{target}: {os_error_text(exc)}; nothing was written")


__all__ = ["LOCK_WAIT_SECONDS", "Stamp", "WorkbookGuard", "WriteRefused", "excel_owner", "read_stamped",
           "real_path", "stamp_of"]
