"""A forkbox session: a sandbox that keeps globals, imports and files between runs.

``Sandbox.create(language="python")`` returns one. ``session.files`` writes, reads,
lists and removes files, and ``upload``/``download`` mirror a directory as one tar
(with ``delete=True``, what the source lacks is removed at the destination). One
run at a time per session: a second raises Conflict; an expired one raises Gone.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import shutil
import stat
import tarfile
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Union

from .errors import InvalidRequest
from .result import ExecResult, _wire

if TYPE_CHECKING:  # pragma: no cover
    from .sandbox import Sandbox

_CALL_TIMEOUT = 120


@dataclass(frozen=True)
class SessionInfo:
    """A session's state (ready, running, idle, paused, poisoned, closed), times and sizes."""

    id: str
    name: Optional[str]
    language: str
    state: str
    created_at: str
    last_active_at: str
    expires_at: str
    timeout_seconds: int
    idle_timeout_seconds: int
    metadata: Dict[str, str]
    execs: int
    parent_id: Optional[str]
    memory_bytes: int
    disk_bytes: int
    #: the template it runs (the language's own unless created with one)
    template: Optional[str] = None

    @classmethod
    def from_wire(cls, w: Mapping[str, Any]) -> "SessionInfo":
        return cls(**{k: w.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


@dataclass(frozen=True)
class SideEffects:
    """What a run changed: files (paths and sizes), pages dirtied, peak guest memory."""

    files_created: List[Dict[str, Any]]
    files_modified: List[Dict[str, Any]]
    files_deleted: List[Dict[str, Any]]
    files_truncated: bool
    pages_dirtied: int
    peak_memory_bytes: int


@dataclass(frozen=True)
class SessionExecResult(ExecResult):
    """An :class:`ExecResult` plus ``result`` (repr of a last expression) and ``side_effects``."""

    result: Optional[str] = None
    result_truncated: bool = False
    side_effects: Optional[SideEffects] = None


@dataclass(frozen=True)
class FileInfo:
    path: str
    name: str
    type: str
    size: int
    mode: int
    mtime: str


@dataclass
class SyncResult:
    """What an upload or download wrote, removed (``delete=True``) and skipped (symlinks, devices)."""

    files: int = 0
    dirs: int = 0
    bytes: int = 0
    deleted: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)


class Session:
    """A live session on the server (made by ``Sandbox.create`` or ``Sandbox.connect``)."""

    def __init__(self, client: "Sandbox", session_id: str) -> None:
        self._client = client
        self.id = session_id
        self._path = "/v1/sessions/" + urllib.parse.quote(session_id, safe="")
        self.files = Files(client, self._path)

    def __repr__(self) -> str:
        return f"Session(id={self.id!r})"

    def run(self, code: str, timeout: float = 30, env: Optional[Mapping[str, str]] = None,
            stdin: Optional[str] = None, discard: bool = False) -> SessionExecResult:
        """Run code in the session; globals and files persist to the next run.

        Args:
            code: code in the session's language.
            timeout: seconds (default 30). env, stdin: as for ``Sandbox.run``.
            discard: run in a throwaway fork; the session is left untouched.

        Returns:
            SessionExecResult: stdout, stderr, exit_code, ..., ``result``, ``side_effects``.

        Raises:
            Conflict (another run in progress), Gone (expired or dead), NotFound.

        Example::

            s.run("import numpy as np; a = np.arange(3)")
            assert s.run("a.sum()").result == "3"
        """
        body = _wire(code, "python", timeout, env, stdin)
        del body["language"]  # the session's own
        if discard:
            body["discard"] = True
        w = self._client._request("POST", self._path + "/exec", body, timeout + self._client._margin)
        base = ExecResult.from_wire(w)
        fx = w.get("side_effects") or {}
        return SessionExecResult(
            **{k: getattr(base, k) for k in ExecResult.__dataclass_fields__},
            result=w.get("result"), result_truncated=w.get("result_truncated", False),
            side_effects=SideEffects(**{k: fx.get(k) for k in SideEffects.__dataclass_fields__}),  # type: ignore[arg-type]
        )

    def fork(self, n: int = 1) -> List["Session"]:
        """``n`` new sessions from this one's live state; they share unchanged pages.

        Example::

            a, b, c = s.fork(3)
        """
        w = self._client._request("POST", self._path + "/fork", {"count": n}, _CALL_TIMEOUT)
        return [Session(self._client, x["id"]) for x in w["sessions"]]

    def pause(self) -> SessionInfo:
        """Write what the session changed to disk and free its VM; the next call resumes it.

        Example::

            assert s.pause().state == "paused"
        """
        return SessionInfo.from_wire(self._client._request("POST", self._path + "/pause", None, _CALL_TIMEOUT))

    def kill(self) -> None:
        """Delete the session and its files.

        Example::

            s.kill()
        """
        self._client._request("DELETE", self._path, None, _CALL_TIMEOUT)

    def info(self) -> SessionInfo:
        """The session's state, times and sizes.

        Example::

            print(s.info().state)
        """
        return SessionInfo.from_wire(self._client._request("GET", self._path, None, _CALL_TIMEOUT))


def _safe_name(name: str) -> str:
    if "\0" in name or name.startswith("/"):
        raise InvalidRequest("InvalidRequest", 0, f"archive member {name[:200]!r} has an absolute name")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidRequest("InvalidRequest", 0, f"archive member {name[:200]!r} has a '..' component")
    return "/".join(parts)


class Files:
    """A session's files. Paths are absolute inside the session (e.g. ``/workspace/data.csv``)."""

    def __init__(self, client: "Sandbox", base: str) -> None:
        self._client = client
        self._base = base

    def _url(self, kind: str, path: str, **q: str) -> str:
        return f"{self._base}/{kind}?" + urllib.parse.urlencode({"path": path, **q})

    def write(self, path: str, data: Union[str, bytes], mode: Optional[int] = None, parents: bool = True) -> FileInfo:
        """Write a file (``str`` as UTF-8), creating parent directories unless ``parents=False``.

        Raises:
            PayloadTooLarge (upload limit or the session's quota), InvalidRequest (bad path).

        Example::

            s.files.write("/workspace/data.csv", "a,b\\n1,2\\n")
        """
        q = {"parents": "true"} if parents else {}
        if mode is not None:
            q["mode"] = format(mode, "o")
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        _, _, body = self._client._call("PUT", self._url("files", path, **q), raw, "application/octet-stream", _CALL_TIMEOUT)
        return FileInfo(**json.loads(body))

    def read(self, path: str, format: str = "bytes") -> Union[bytes, str]:  # noqa: A002 - E2B's name
        """Read a file: ``bytes``, or ``str`` with ``format="text"``.

        Raises:
            NotFound (no such file), InvalidRequest (a directory: use ``list``).

        Example::

            text = s.files.read("/workspace/out.txt", format="text")
        """
        _, ctype, body = self._client._call("GET", self._url("files", path), None, "", _CALL_TIMEOUT)
        if ctype.startswith("application/json"):
            raise InvalidRequest("InvalidRequest", 400, f"{path} is a directory: use files.list")
        return body.decode("utf-8") if format == "text" else body

    def list(self, path: str) -> List[FileInfo]:
        """The entries of a directory with sizes, modes and times.

        Example::

            for e in s.files.list("/workspace"):
                print(e.name, e.type, e.size)
        """
        _, ctype, body = self._client._call("GET", self._url("files", path), None, "", _CALL_TIMEOUT)
        if not ctype.startswith("application/json"):
            raise InvalidRequest("InvalidRequest", 400, f"{path} is a file: use files.read")
        return [FileInfo(**e) for e in json.loads(body)["entries"]]

    def remove(self, path: str, recursive: bool = False) -> None:
        """Remove a file, or a directory (``recursive=True`` when it is not empty).

        Example::

            s.files.remove("/workspace/tmp", recursive=True)
        """
        q = {"recursive": "true"} if recursive else {}
        self._client._call("DELETE", self._url("files", path, **q), None, "", _CALL_TIMEOUT)

    def upload(self, local_dir: str, remote_dir: str, delete: bool = False) -> SyncResult:
        """Copy a local directory into the session as one tar; ``delete=True`` removes remote files
        under ``remote_dir`` that are not in ``local_dir`` (the destination mirrors the source).

        Example::

            s.files.upload("./project", "/workspace", delete=True)
        """
        buf = io.BytesIO()
        skipped: List[str] = []
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for root, dirs, files in os.walk(local_dir):
                dirs.sort()
                for name in sorted(dirs) + sorted(files):
                    p = os.path.join(root, name)
                    rel = os.path.relpath(p, local_dir).replace(os.sep, "/")
                    st = os.lstat(p)
                    if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
                        tar.add(p, arcname=rel, recursive=False)
                    else:
                        skipped.append(p)
                dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
        q = {"delete": "true"} if delete else {}
        _, _, body = self._client._call("PUT", self._url("archive", remote_dir, **q), buf.getvalue(), "application/x-tar", _CALL_TIMEOUT * 5)
        r = json.loads(body)
        return SyncResult(r["files"], r["dirs"], r["bytes"], r["deleted"], skipped + r["skipped"])

    def download(self, remote_dir: str, local_dir: str, delete: bool = False) -> SyncResult:
        """Copy a directory of the session into ``local_dir`` (created); ``delete=True`` removes local
        files under ``local_dir`` that are not in the session.

        Example::

            s.files.download("/workspace/out", "./out")
        """
        _, _, body = self._client._call("GET", self._url("archive", remote_dir), None, "", _CALL_TIMEOUT * 5)
        out = SyncResult()
        members = []
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as tar:
            for m in tar.getmembers():
                name = _safe_name(m.name)
                if not name or not (m.isfile() or m.isdir()):
                    if name:
                        out.skipped.append(os.path.join(local_dir, name))
                    continue
                f = tar.extractfile(m) if m.isfile() else None
                members.append((name, m.isdir(), m.mode & 0o7777, m.mtime, f.read() if f else b""))
        want: Dict[str, bool] = {}
        for name, is_dir, _, _, _ in members:
            parts = name.split("/")
            for i in range(1, len(parts)):
                want["/".join(parts[:i])] = True
            want[name] = is_dir
        os.makedirs(local_dir, exist_ok=True)
        if delete:
            for root, dirs, files in os.walk(local_dir):
                for name in list(dirs) + files:
                    p = os.path.join(root, name)
                    rel = os.path.relpath(p, local_dir).replace(os.sep, "/")
                    is_dir = os.path.isdir(p) and not os.path.islink(p)
                    if want.get(rel) is is_dir:
                        continue
                    if is_dir:
                        shutil.rmtree(p)
                        dirs.remove(name)
                    else:
                        os.unlink(p)
                    out.deleted.append(p)

        def ensure_dir(rel: str) -> None:
            cur = local_dir
            for part in [x for x in rel.split("/") if x]:
                cur = os.path.join(cur, part)
                if os.path.isdir(cur) and not os.path.islink(cur):
                    continue
                if os.path.lexists(cur):  # a file or symlink in the way: replaced, never written through
                    if os.path.isdir(cur) and not os.path.islink(cur):
                        shutil.rmtree(cur)
                    else:
                        os.unlink(cur)
                os.mkdir(cur)

        for name, is_dir, mode, mtime, data in members:
            if is_dir:
                ensure_dir(name)
                out.dirs += 1
                continue
            ensure_dir(posixpath.dirname(name))
            p = os.path.join(local_dir, name)
            if os.path.lexists(p) and (os.path.islink(p) or not os.path.isfile(p)):
                shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)
            with open(p, "wb") as fh:
                fh.write(data)
            os.chmod(p, mode or 0o644)
            if mtime:
                os.utime(p, (mtime, mtime))
            out.files += 1
            out.bytes += len(data)
        return out
