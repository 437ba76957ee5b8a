"""Where obliviate may write, and how: output folders that never destroy a user's files.

Rules (checked before any work starts, and again just before the result is moved into place):

- an output is a folder written to a temporary sibling ``.NAME.tmp-PID-XXXX`` and renamed at the end, so a
  failed or killed run leaves no half-written output;
- every folder obliviate writes carries a marker file (:data:`MARKER`); an existing, non-empty output folder is
  replaced only with ``overwrite=True`` (``--overwrite``) **and** only if it carries the marker: obliviate never
  deletes or replaces a file or folder it did not create;
- an output may not contain, replace or lie inside any of the run's inputs (model, oracle, target, data files,
  the cache), nor be the current folder or one of its parents;
- the nearest existing parent must be a writable folder with room for the output;
- temporary folders left by a killed run (``kill -9``) are recognised by their marker and the dead process id
  in their name, and removed by the next run that writes beside them.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator

from obliviate.core.utils import ObliviateError, _umask, package_version

MARKER = ".obliviate"  # in every folder obliviate writes: JSON {"written_by": "obliviate", ...}


class Terminated(BaseException):
    """SIGTERM, raised where the process is, so that every half-written output is removed on the way out, as it
    is for Ctrl-C (SIGINT's KeyboardInterrupt); a BaseException so that no ``except Exception`` swallows it."""


_termination_requested = False


def request_termination() -> None:
    """Record that the process was asked to stop, then raise :class:`Terminated` (the CLI's SIGTERM handler).
    Python drops an exception a signal handler raises while a finaliser runs ("Exception ignored in ..."), so the
    record stays: :func:`atomic_dir` checks it before it moves an output into place."""
    global _termination_requested
    _termination_requested = True
    raise Terminated()


def reset_termination() -> None:
    """Forget an earlier request (a new run in the same process)."""
    global _termination_requested
    _termination_requested = False


_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-[A-Za-z0-9_]+$")


def resolve(path: str | os.PathLike) -> Path:
    """Absolute path with ``~`` expanded and symlinks of its existing part resolved."""
    return Path(os.path.realpath(os.path.expanduser(str(path))))


def within(inner: Path, outer: Path) -> bool:
    """Whether ``inner`` is ``outer`` or lies inside it (both resolved)."""
    return inner == outer or outer in inner.parents


def is_ours(folder: Path) -> bool:
    """A folder obliviate wrote: it has the marker (or, from versions before the marker, an ``obliviate.json``
    model record or a ``results.json`` that names obliviate)."""
    if (folder / MARKER).is_file() or (folder / "obliviate.json").is_file():
        return True
    res = folder / "results.json"
    if res.is_file():
        with contextlib.suppress(OSError, ValueError):
            return "obliviate" in json.loads(res.read_text(encoding="utf-8"))
    return False


def _nearest_existing(p: Path) -> Path:
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def check_output(out: str | os.PathLike, *, overwrite: bool = False, inputs: Iterable[tuple[str, object]] = (),
                 need_bytes: int = 0, flag: str = "--out") -> Path:
    """Check that ``out`` may be written (see the module docstring); returns it resolved. ``inputs`` are
    ``(role, path)`` pairs (paths that are not local, such as hub ids, are skipped by the caller)."""
    if not str(out).strip():
        raise ObliviateError(f"{flag}: an output folder is required")
    p = resolve(out)
    if within(Path.cwd().resolve(), p):
        raise ObliviateError(f"{flag} {out} is the current folder or one of its parents; name a new folder for the "
                             "output")
    for role, path in inputs:
        if path is None:
            continue
        q = resolve(path)
        if within(q, p):
            raise ObliviateError(f"{flag} {out} would contain or replace the {role} {path}; name another folder")
        if within(p, q):
            raise ObliviateError(f"{flag} {out} lies inside the {role} {path}; obliviate never writes into its "
                                 "inputs or its cache")
    parent = _nearest_existing(p.parent)
    if not parent.is_dir():
        raise ObliviateError(f"{flag} {out}: {parent} is a file, not a folder")
    if Path(os.path.abspath(os.path.expanduser(str(out)))).is_symlink():
        raise ObliviateError(f"{flag} {out} is a symbolic link; obliviate does not write through or replace links")
    if p.exists():
        if not p.is_dir():
            raise ObliviateError(f"{flag} {out} is an existing file; obliviate writes a folder and never replaces a "
                                 "file it did not create")
        if any(p.iterdir()):
            if not overwrite:
                raise ObliviateError(f"{flag} {out} already exists and is not empty; name a new folder, or pass "
                                     "--overwrite to replace an earlier obliviate output")
            if not is_ours(p):
                raise ObliviateError(f"{flag} {out} was not written by obliviate (it has no {MARKER} marker); "
                                     "obliviate only replaces its own outputs, so name a new folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ObliviateError(f"{flag} {out}: cannot write in {parent} (permission denied)")
    if need_bytes > 0:
        free = shutil.disk_usage(parent).free
        if free < need_bytes:
            raise ObliviateError(f"{flag} {out}: {_size(free)} free on {parent}, the output needs about "
                                 f"{_size(need_bytes)}")
    return p


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(folder: Path) -> list[Path]:
    """Remove the temporary folders in ``folder`` that a killed obliviate run left behind: named
    ``.NAME.tmp-PID-...`` or ``.NAME.old-PID-...``, carrying the marker, written on this host, and whose process
    is gone. Anything else (a folder of someone else's, a live run's temp) is left alone. Returns what went."""
    removed = []
    if not folder.is_dir():
        return removed
    host = socket.gethostname()
    for entry in folder.iterdir():
        m = _TEMP.match(entry.name)
        if not m or not entry.is_dir() or entry.is_symlink() or not (entry / MARKER).is_file():
            continue
        with contextlib.suppress(OSError, ValueError):
            info = json.loads((entry / MARKER).read_text(encoding="utf-8"))
            if m["kind"] == "tmp" and info.get("host") != host:
                continue
            if not _alive(int(m["pid"])):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


def _marker(tmp: Path) -> None:
    info = {"written_by": "obliviate", "version": package_version(), "host": socket.gethostname(), "pid": os.getpid(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (tmp / MARKER).write_text(json.dumps(info) + "\n", encoding="utf-8")


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike, *, overwrite: bool = False, inputs: Iterable[tuple[str, object]] = (),
               need_bytes: int = 0) -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; move it to ``final`` only if the block succeeds.

    ``final`` is checked with :func:`check_output` before and after the block. A failure (an exception, a
    full disk) removes the temporary folder and leaves an existing ``final`` as it was.
    """
    inputs = list(inputs)
    final = Path(final)
    check_output(final, overwrite=overwrite, inputs=inputs, need_bytes=need_bytes, flag="output")
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(final.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-{os.getpid()}-", dir=final.parent))
    try:
        _marker(tmp)
        yield tmp
        if _termination_requested:  # a SIGTERM whose exception was lost on the way: still nothing is written
            raise Terminated()
        check_output(final, overwrite=overwrite, inputs=inputs, flag="output")  # nothing appeared meanwhile
        _default_modes(tmp)
        old = None
        if final.exists() and any(final.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-{os.getpid()}-", dir=final.parent))
            os.replace(final, old)  # an empty folder is replaced by the rename itself
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _default_modes(root: Path) -> None:
    """mkdtemp/mkstemp create 0700/0600 entries; give results the modes any new file would have."""
    umask = _umask()
    os.chmod(root, 0o777 & ~umask)
    for p in root.rglob("*"):
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~umask)


def weights_bytes(spec: str | os.PathLike) -> int:
    """Bytes of a local model's weight files (a folder's safetensors/bin files, a .gguf file); 0 when unknown."""
    p = Path(os.path.expanduser(str(spec)))
    if p.is_file():
        return p.stat().st_size
    if p.is_dir():
        return sum(f.stat().st_size for pat in ("*.safetensors", "*.bin") for f in p.glob(pat))
    return 0


def local_path(spec) -> str | None:
    """``spec`` if it names something on disk (a model folder, a file), else None (built-in names, hub ids)."""
    if spec is None:
        return None
    s = str(spec)
    return s if os.path.exists(os.path.expanduser(s)) else None


__all__ = ["MARKER", "Terminated", "atomic_dir", "check_output", "clean_stale", "is_ours", "local_path",
           "request_termination", "reset_termination", "resolve", "weights_bytes", "within"]
