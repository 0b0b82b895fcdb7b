"""The trust boundary of a run directory: what the engine wrote there is signed with a per-user key.

Modelled on Jupyter's notebook trust: an HMAC-SHA256 of the content with a secret only this
user reads, recorded in a small signatures file. A run directory holds files the engine later
reads with readers that run code (``searcher.pkl`` is a pickle, the stored spec names modules
to import, model files are loaded by their trainer), so a directory someone hands you must not
be read that way. Each such file, and the spec text the store holds, is signed when the engine
writes it; ``resume``, ``export`` and :func:`automl.load`'s models read a run only when its
signatures verify with *your* key (or when told to trust it: ``--trust``, ``trust=True``).
``show`` and ``report`` read JSON and SQL only and work on any run.

The key: ``$AUTOML_KEY_FILE``, else ``$XDG_CONFIG_HOME/automl/key`` (default
``~/.config/automl/key``), 32 random bytes created on first use with mode 0600.

The signatures file ``RUN_DIR/signatures.jsonl`` holds one JSON line per signed content:
``{"path": "searcher.pkl", "hmac": "..."}``, appended (so a driver killed mid-write loses at
most its last line, and the previous version of a rewritten file stays valid). A content
verifies when its HMAC is one of the file's lines: the HMAC is of the content alone (as
Jupyter's), so a model copied into ``models/`` verifies as the trial's file it copies. A line
cannot be forged without the key; lines written with another key simply do not match.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from automl.errors import AutoMLError

if TYPE_CHECKING:
    from automl.run import Run

__all__ = ["KEY_ENV", "SIGNATURES", "SPEC_ENTRY", "UntrustedRunError", "Verdict", "check_file", "check_run", "inside", "key_file",
           "load_key", "mac", "mac_file", "model_files", "run_verdicts", "sign", "sign_bytes", "sign_trial", "signed", "verify",
           "verify_bytes"]

#: The environment variable naming the key file (tests point it at a temporary directory).
KEY_ENV = "AUTOML_KEY_FILE"
#: The signatures file in a run directory.
SIGNATURES = "signatures.jsonl"
#: The entry name of the spec text the store holds (it is not a file of the run directory).
SPEC_ENTRY = "store:spec_text"
_KEY_BYTES = 32
_DOMAIN = b"automl-run-content-v1\0"


class UntrustedRunError(AutoMLError):
    """A run directory whose signatures do not verify with this user's key, read in a way that runs code."""


@dataclass(frozen=True)
class Verdict:
    """Whether one file (or content) verifies.

    Attributes:
        ok: True when its HMAC is among the run's signatures.
        path: The file (or entry name) checked.
        reason: Why not (empty when ``ok``).
    """

    ok: bool
    path: str
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def key_file() -> Path:
    """Where this user's key lives (``$AUTOML_KEY_FILE``, else ``$XDG_CONFIG_HOME/automl/key``)."""
    named = os.environ.get(KEY_ENV)
    if named:
        return Path(named).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "automl" / "key"


_cache: dict[str, bytes] = {}


def load_key() -> bytes:
    """This user's key, created (0600, atomically: two processes starting at once agree) on first use.

    Raises:
        AutoMLError: When the key file cannot be read or made, or is not a key.
    """
    path = key_file()
    cached = _cache.get(str(path))
    if cached is not None:
        return cached
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = _create_key(path)
    except OSError as exc:
        raise AutoMLError(f"cannot read the automl key {str(path)!r} ({exc.strerror or exc}); set {KEY_ENV} to "
                          "a file of your own") from exc
    if len(key) < 16:
        raise AutoMLError(f"the automl key {str(path)!r} holds {len(key)} bytes, not a key; remove it (a new one is "
                          f"made, and runs signed with the old one are then untrusted) or set {KEY_ENV}")
    _cache[str(path)] = key
    return key


def _create_key(path: Path) -> bytes:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(_KEY_BYTES))
        try:
            os.link(tmp, path)  # fails when another process made the key first: theirs is the key
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
        finally:
            tmp.unlink()
        return path.read_bytes()
    except OSError as exc:
        raise AutoMLError(f"cannot create the automl key {str(path)!r} ({exc.strerror or exc}); set {KEY_ENV} to "
                          "a writable path") from exc


def mac(content: bytes) -> str:
    """The HMAC-SHA256 (hex) of ``content`` with this user's key."""
    return hmac.new(load_key(), _DOMAIN + content, hashlib.sha256).hexdigest()


#: Bytes read at a time when a file is signed or verified: a model of any size costs this much memory, not its size.
BLOCK = 1 << 20


def _feed(digest: hmac.HMAC | hashlib._Hash, path: Path) -> None:
    """Feed a file's bytes to ``digest`` :data:`BLOCK` bytes at a time (HMAC and hashlib digests are incremental:
    the result is that of the whole content at once)."""
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)


def mac_file(path: Path) -> str:
    """The :func:`mac` of a file's content or a directory's listing (see :func:`_content`), the file read in blocks.

    Raises:
        OSError: A symbolic link (never followed), a missing or unreadable path.
    """
    _no_link(path, path.name)
    if path.is_file():
        digest = hmac.new(load_key(), _DOMAIN, hashlib.sha256)
        _feed(digest, path)
        return digest.hexdigest()
    return mac(_content(path))


def _no_link(path: Path, shown: object) -> None:
    if path.is_symlink():
        raise OSError(errno.ELOOP, f"{shown} is a symbolic link")


def _content(path: Path) -> bytes:
    """A file's bytes; a directory's sorted ``relative path, SHA-256`` lines. Symlinks refused (never followed).

    Signing uses :func:`mac_file`, which reads a file in blocks instead; the digest is the same.
    """
    _no_link(path, path.name)
    if path.is_file():
        return path.read_bytes()
    if not path.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"{path} does not exist")
    lines = []
    for item in sorted(path.rglob("*")):
        _no_link(item, item.relative_to(path))
        if item.is_file():
            sha = hashlib.sha256()
            _feed(sha, item)
            lines.append(f"{item.relative_to(path).as_posix()}\0{sha.hexdigest()}\n")
    return ("automl-directory\n" + "".join(lines)).encode()


def _entry(run_dir: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(run_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


#: Lines appended for one path by this process before the file is compacted (``searcher.pkl`` is signed at
#: every save: up to one a second).
_COMPACT_EVERY = 64
_appended: dict[tuple[str, str], int] = {}


def sign_bytes(run_dir: str | Path, name: str, content: bytes) -> None:
    """Record ``content`` (to be written as ``name``, or an entry such as :data:`SPEC_ENTRY`) as the engine's."""
    _record(run_dir, name, mac(content))


def _record(run_dir: str | Path, name: str, digest: str) -> None:
    """Append the signature line of ``name``'s content (its :func:`mac`)."""
    line = json.dumps({"path": name, "hmac": digest}) + "\n"
    # One write of one short line with O_APPEND: lines of two writers never interleave.
    fd = os.open(Path(run_dir) / SIGNATURES, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    key = (str(run_dir), name)
    _appended[key] = _appended.get(key, 0) + 1
    if _appended[key] >= _COMPACT_EVERY:
        _appended[key] = 0
        _compact(Path(run_dir), name)


def _compact(run_dir: Path, name: str, keep: int = 2) -> None:
    """Keep only the last ``keep`` lines of ``name`` (the file as it is, and the one before, which a kill between
    signing and replacing leaves), atomically."""
    path = run_dir / SIGNATURES
    lines = path.read_text(errors="replace").splitlines(keepends=True)
    mine = [i for i, line in enumerate(lines) if _path_of(line) == name]
    drop = set(mine[:-keep])
    tmp = path.with_name(f".{SIGNATURES}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.writelines(line if line.endswith("\n") else line + "\n" for i, line in enumerate(lines) if i not in drop)
    os.replace(tmp, path)


def _path_of(line: str) -> str | None:
    try:
        return str(json.loads(line)["path"])
    except (ValueError, KeyError, TypeError):
        return None


def sign(run_dir: str | Path, paths: Iterable[str | Path]) -> None:
    """Sign files (or directories) of ``run_dir`` as they are now; a missing file or a symlink is skipped."""
    run_dir = Path(run_dir)
    for p in paths:
        path = inside(run_dir, p)
        if path is None:
            continue
        try:
            digest = mac_file(path)
        except OSError:
            continue
        _record(run_dir, _entry(run_dir, path), digest)


_read: dict[str, tuple[tuple[int, int], tuple[set[str], dict[str, int]]]] = {}


def signed(run_dir: str | Path) -> tuple[set[str], dict[str, int]]:
    """The HMACs recorded in ``run_dir`` and the number of entries per path (read again only when it changed)."""
    macs: set[str] = set()
    paths: dict[str, int] = {}
    file = Path(run_dir) / SIGNATURES
    try:
        info = file.stat()
        stamp = (info.st_mtime_ns, info.st_size)
        cached = _read.get(str(file))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        text = file.read_text(errors="replace")
    except OSError:
        return macs, paths
    _read[str(file)] = (stamp, (macs, paths))
    for line in text.splitlines():
        try:
            item = json.loads(line)
            macs.add(str(item["hmac"]))
            paths[str(item["path"])] = paths.get(str(item["path"]), 0) + 1
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a kill, or not ours: it signs nothing
    return macs, paths


def verify_bytes(run_dir: str | Path, name: str, content: bytes) -> Verdict:
    """Whether ``content`` (read as ``name``) is among ``run_dir``'s signatures."""
    return _verdict(run_dir, name, mac(content))


def _verdict(run_dir: str | Path, name: str, digest: str) -> Verdict:
    """Whether the content whose :func:`mac` is ``digest`` (read as ``name``) is among ``run_dir``'s signatures."""
    macs, paths = signed(run_dir)
    if any(hmac.compare_digest(digest, m) for m in macs):
        return Verdict(True, name)
    if not (Path(run_dir) / SIGNATURES).is_file():
        why = f"the run has no {SIGNATURES}: written before automl signed runs, or it was removed"
    elif name in paths:
        why = "it changed since automl wrote it, or another user's key signed it"
    else:
        why = "not signed with your key: another user's run, or added since"
    return Verdict(False, name, why)


def inside(run_dir: str | Path, path: str | Path) -> Path | None:
    """``path`` (relative to ``run_dir``, or absolute) when it lies in ``run_dir`` with no symbolic link on
    the way from ``run_dir`` to it (``run_dir`` itself may be one); else None."""
    root = Path(run_dir).resolve()
    candidate = Path(path) if Path(path).is_absolute() else root / path
    try:
        rel = Path(os.path.normpath(candidate)).relative_to(root)
    except ValueError:
        try:  # an absolute path through the run directory's own symlink
            rel = Path(os.path.normpath(candidate)).relative_to(Path(os.path.normpath(Path(run_dir).absolute())))
        except ValueError:
            return None
    if ".." in rel.parts:
        return None
    here = root
    for part in rel.parts:
        here = here / part
        if here.is_symlink():
            return None
    return here


def verify(run_dir: str | Path, path: str | Path) -> Verdict:
    """Whether the file (or directory) ``path`` of ``run_dir`` lies in it, follows no symlink out, and is signed."""
    where = inside(run_dir, path)
    name = _entry(Path(run_dir), where) if where is not None else str(path)
    if where is None:
        return Verdict(False, str(path), "it is outside the run directory (or reached through a symbolic link)")
    try:
        digest = mac_file(where)
    except OSError as exc:
        return Verdict(False, name, f"it cannot be read ({exc.strerror or exc})")
    return _verdict(run_dir, name, digest)


#: Files of a trial's directory read as data only (JSON, numpy arrays without pickles, text): not verified.
_DATA_ONLY = (".json", ".npy", ".csv", ".txt", ".log")


def model_files(run_dir: str | Path, artifact: str | Path | None) -> list[Path]:
    """A trial's model file (``artifact``, as the store holds it) and the other files of its directory that are
    not plain data: what a trainer may load from it (siblings in other formats, an ensemble's member file)."""
    if not artifact:
        return []
    path = Path(artifact)
    out = [path]
    where = inside(run_dir, path)
    if where is not None and where.parent.is_dir() and where.parent != Path(run_dir).resolve():
        out += [p for p in sorted(where.parent.iterdir())
                if p != where and not p.is_dir() and not p.name.lower().endswith(_DATA_ONLY)]
    return out


def sign_trial(run_dir: str | Path, artifact: str | Path | None) -> None:
    """Sign a completed trial's model file and the other files of its directory (see :func:`model_files`)."""
    files = model_files(run_dir, artifact)
    if files:
        sign(run_dir, files)


def run_verdicts(run: Run, *, searcher: bool = False, trials: bool = False,
                 files: Iterable[str | Path] = ()) -> list[Verdict]:
    """The verdicts on what reading ``run`` in a code-running way relies on: ``run.json``, the spec text the store
    holds, ``searcher.pkl`` (``searcher``), every completed trial's model files that exist (``trials``), ``files``."""
    from automl.run import RUN_FILE

    # Names relative to the run directory (what verify takes), not run.dir / NAME: run.dir may be relative.
    out = [verify(run.dir, RUN_FILE), verify_bytes(run.dir, SPEC_ENTRY, run.info().spec_text.encode())]
    paths: list[Path] = [Path(f) for f in files]
    if searcher and (run.dir / "searcher.pkl").exists():
        paths.append(Path("searcher.pkl"))
    if trials:
        for t in run.trials():
            if t.status == "completed":
                paths += [p for p in model_files(run.dir, t.artifact) if p.exists() or p.is_symlink()]
    out += [verify(run.dir, p) for p in paths]
    return out


def check_run(run: Run, action: str, *, trust: bool = False, searcher: bool = False, trials: bool = False,
              files: Iterable[str | Path] = (), adopt: bool = False) -> list[Verdict]:
    """Refuse to ``action`` a run whose signatures do not verify (see :func:`run_verdicts`), unless ``trust``.

    With ``trust`` and ``adopt`` (a resume: the run goes on as this user's), what failed and lies in the run
    directory is signed with this user's key, so the next command trusts it. Returns the failed verdicts.

    Raises:
        UntrustedRunError: One line naming the first file that failed and why.
    """
    files = list(files)
    failed = [v for v in run_verdicts(run, searcher=searcher, trials=trials, files=files) if not v]
    if failed and not trust:
        first = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise UntrustedRunError(
            f"refusing to {action} {str(run.dir)!r}: {first.path} does not verify ({first.reason}){more}; "
            "pass --trust if you trust whoever wrote it (it may run code the run directory holds)")
    if failed and adopt:
        sign_bytes(run.dir, SPEC_ENTRY, run.info().spec_text.encode())
        sign(run.dir, [v.path for v in failed if v.path != SPEC_ENTRY])
    return failed


def check_file(run_dir: str | Path, path: str | Path, action: str, *, trust: bool = False) -> Path:
    """``path`` as a file of ``run_dir`` that may be read to ``action``: in it, reached through no symbolic link
    (refused even with ``trust``), and signed with this user's key (unless ``trust``).

    Raises:
        UntrustedRunError: One line naming the file and why.
    """
    where = inside(run_dir, path)
    if where is None:
        raise UntrustedRunError(f"refusing to {action} {str(path)!r}: it is outside the run directory "
                                f"{str(run_dir)!r} or reached through a symbolic link (never followed out of it)")
    verdict = verify(run_dir, where)
    if not verdict and not trust:
        raise UntrustedRunError(f"refusing to {action} {str(run_dir)!r}: {verdict.path} does not verify "
                                f"({verdict.reason}); pass --trust if you trust whoever wrote it")
    return where
