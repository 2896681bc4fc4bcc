"""Files written so that a reader (or a killed run) never sees half of one: atomic text/JSON writes
and a folder replaced as a whole; JSON made standard (NaN -> null) for DVC and browsers; a file's checksum."""
import contextlib
import ctypes
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path


def atomic_write_text(path, text: str) -> None:
    """Write text so that readers see either the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path, obj) -> None:
    """Standard JSON (NaN written as null, see json_safe), atomically."""
    atomic_write_text(path, json.dumps(json_safe(obj), indent=1) + "\n")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    at_fdcwd, rename_exchange = -100, 2
    return renameat2 is not None and renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b),
                                               rename_exchange) == 0


@contextlib.contextmanager
def staged_dir(path):
    """Yield an empty staging folder beside `path`; when the block succeeds the staging folder replaces
    `path` in one step (readers see the old folder or the complete new one, never a mix, and no stale
    file of an earlier run survives); when it fails `path` is untouched and the staging folder removed.
    Staging folders left by a killed run are removed on the next call."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        if not path.exists():
            os.replace(tmp, path)
        elif not _exchange(tmp, path):  # not Linux: two renames, the old folder kept until the second
            old = tmp.with_name(tmp.name.replace(".tmp", ".old.tmp"))
            os.replace(path, old)
            os.replace(tmp, path)
            tmp = old
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def file_sha256(path) -> str:
    """The SHA-256 of a file's bytes, read in chunks (a model's weights: its checksum)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def json_safe(obj):
    """NaN -> None, recursively, so that the JSON is standard (DVC, browsers)."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj
