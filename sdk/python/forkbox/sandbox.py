"""The forkbox client: run code in hardware-isolated, copy-on-write forked VMs.

Standard library only (``urllib``). ``Sandbox()`` reads ``FORKBOX_API_KEY``
and ``FORKBOX_BASE_URL`` (default ``http://127.0.0.1:8080``); ``Sandbox.create()``
gives a :class:`~forkbox.session.Session` that keeps state between runs.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Union

from .errors import ERROR_CLASSES, ConnectionError, ForkboxError, InvalidRequest, UnexpectedResponse
from .result import RESULT_FORMATS, ExecResult, Result, _wire  # noqa: F401 (Result, RESULT_FORMATS: re-exported)

if TYPE_CHECKING:  # pragma: no cover
    from .session import Session, SessionInfo

DEFAULT_BASE_URL = "http://127.0.0.1:8080"


BatchItem = Union[str, Mapping[str, Any]]


class Sandbox:
    """A client for one forkbox server.

    Args:
        api_key: sent as ``Authorization: Bearer …``; default ``FORKBOX_API_KEY``
            (none when the server runs without auth).
        base_url: server URL; default ``FORKBOX_BASE_URL``, else ``http://127.0.0.1:8080``.
        request_margin: extra seconds to wait beyond the execution timeout (default 30).

    Example::

        from forkbox import Sandbox
        sb = Sandbox()
        r = sb.run("print(1 + 1)")
        print(r.stdout.strip(), r.exit_code)   # 2 0
    """

    def __init__(self, api_key: Optional[str] = None, base_url: Optional[str] = None,
                 request_margin: float = 30) -> None:
        self._api_key = api_key if api_key is not None else (os.environ.get("FORKBOX_API_KEY") or None)
        self.base_url = (base_url or os.environ.get("FORKBOX_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self._margin = request_margin

    def __repr__(self) -> str:  # never show the key
        return f"Sandbox(base_url={self.base_url!r})"

    def run(self, code: str, language: str = "python", timeout: float = 30,
            env: Optional[Mapping[str, str]] = None, stdin: Optional[str] = None,
            template: Optional[str] = None) -> ExecResult:
        """Run ``code`` in a fresh fork.

        Args:
            code: source code to run.
            language: language of ``code`` (default ``"python"``).
            timeout: wall-clock limit in seconds (default 30).
            env: environment variables for the program.
            stdin: text the program reads on standard input.
            template: template by name, e.g. ``"python-data"`` (default: the language's own).

        Returns:
            ExecResult: stdout, stderr, exit_code, outcome and timings.

        Raises:
            InvalidRequest, Unauthorized, RateLimited, Overloaded (see ``retry_after``),
            ConnectionError, or another ForkboxError subclass for platform failures.

        Example::

            r = Sandbox().run("import sys; print('hi'); sys.exit(3)", timeout=5)
            assert r.stdout == "hi\\n" and r.exit_code == 3
        """
        body = _wire(code, language, timeout, env, stdin, template)
        return ExecResult.from_wire(self._request("POST", "/v1/exec", body, timeout + self._margin))

    def run_batch(self, items: Sequence[BatchItem]) -> List[ExecResult]:
        """Run several programs in parallel forks; results come back in the same order.

        Args:
            items: code strings, or dicts ``{"code", "language"?, "template"?, "timeout"?, "env"?, "stdin"?}``.

        Returns:
            list[ExecResult]: one per item, in order.

        Raises:
            ForkboxError subclasses as for :meth:`run`; a platform error fails the whole batch.

        Example::

            a, b = Sandbox().run_batch(["print(1)", {"code": "print(2)", "timeout": 5}])
        """
        executions = []
        for i, it in enumerate(items):
            if isinstance(it, str):
                executions.append(_wire(it))
                continue
            extra = set(it) - {"code", "language", "template", "timeout", "env", "stdin"}
            if extra or "code" not in it:
                raise InvalidRequest("InvalidRequest", 0, f"items[{i}] must have 'code' and only "
                                     f"language/template/timeout/env/stdin (got {sorted(it)})")
            executions.append(_wire(**dict(it)))
        longest = max((e["timeout_seconds"] for e in executions), default=0)
        data = self._request("POST", "/v1/exec/batch", {"executions": executions},
                             longest * max(1, len(executions)) + self._margin)
        return [ExecResult.from_wire(r) for r in data["results"]]

    def health(self) -> Dict[str, Any]:
        """Server health (template readiness, pool state).

        Returns the body for 200 (``status == "ok"``) and for 503 (``"starting"``,
        ``"shutting_down"``).

        Raises:
            ConnectionError: the server is unreachable.

        Example::

            assert Sandbox().health()["status"] == "ok"
        """
        return self._request("GET", "/v1/health", None, 10, ok_on_503=True)

    @classmethod
    def create(cls, language: str = "python", name: Optional[str] = None, timeout: Optional[int] = None,
               idle_timeout: Optional[int] = None, env: Optional[Mapping[str, str]] = None,
               metadata: Optional[Mapping[str, str]] = None, api_key: Optional[str] = None,
               base_url: Optional[str] = None, template: Optional[str] = None) -> "Session":
        """Create a session: a sandbox that keeps globals, imports and files between runs.

        Args:
            language: language of every run (default ``"python"``).
            name: unique among this key's sessions (a taken name raises Conflict).
            timeout: lifetime in seconds (server default when None).
            idle_timeout: seconds without a call before the session is paused to disk.
            env: environment of every run. metadata: your labels, returned as given.
            api_key, base_url: as for ``Sandbox()``.
            template: template by name, e.g. ``"python-data"`` (default: the language's own).

        Returns:
            Session

        Raises:
            Conflict (name taken), InvalidRequest, Unsupported (language), RateLimited (too many sessions).

        Example::

            s = Sandbox.create(language="python", timeout=600)
            s.run("x = 41")
            assert s.run("x + 1").result == "42"
            s.kill()
        """
        from .session import Session
        body: Dict[str, Any] = {"language": language}
        if template is not None:
            body["template"] = template
        if name is not None:
            body["name"] = name
        if timeout is not None:
            body["timeout_seconds"] = timeout
        if idle_timeout is not None:
            body["idle_timeout_seconds"] = idle_timeout
        if env is not None:
            body["env"] = dict(env)
        if metadata is not None:
            body["metadata"] = dict(metadata)
        client = cls(api_key, base_url)
        w = client._request("POST", "/v1/sessions", body, 120)
        return Session(client, w["id"])

    @classmethod
    def connect(cls, session_id: str, api_key: Optional[str] = None, base_url: Optional[str] = None) -> "Session":
        """A Session object for an existing session of this key.

        Raises:
            NotFound (unknown id or another key's), Gone (expired or deleted).

        Example::

            s = Sandbox.connect("sess_...")
        """
        from .session import Session
        s = Session(cls(api_key, base_url), session_id)
        s.info()
        return s

    @classmethod
    def list(cls, api_key: Optional[str] = None, base_url: Optional[str] = None) -> List["SessionInfo"]:
        """The sessions of this API key.

        Example::

            for s in Sandbox.list():
                print(s.id, s.state)
        """
        from .session import SessionInfo
        w = cls(api_key, base_url)._request("GET", "/v1/sessions", None, 120)
        return [SessionInfo.from_wire(x) for x in w["sessions"]]

    def _request(self, method: str, path: str, body: Any, timeout: float, ok_on_503: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        status, _ctype, raw = self._call(method, path, data, "application/json", timeout, ok_on_503)
        if status == 204:
            return None
        return _parse(status, raw, None)

    def _call(self, method: str, path: str, data: Optional[bytes], content_type: str, timeout: float,
              ok_on_503: bool = False) -> "tuple[int, str, bytes]":
        """One HTTP call: (status, content type, body bytes); an error envelope raises its class."""
        headers = {"Accept": "application/json", "User-Agent": "forkbox-sdk-python/0.1.0"}
        if data is not None:
            headers["Content-Type"] = content_type
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key}"
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as res:
                return res.status, res.headers.get("content-type", ""), res.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            status = e.code
            if ok_on_503 and status == 503:
                try:
                    doc = json.loads(raw)
                    if isinstance(doc, dict) and "status" in doc:
                        return status, "application/json", raw
                except ValueError:
                    pass
            raise _error(status, raw, e.headers) from None
        except (urllib.error.URLError, socket.timeout, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ConnectionError("ConnectionError", 0, f"cannot reach {self.base_url}: {reason}") from e


def _parse(status: int, raw: bytes, headers: Any) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise UnexpectedResponse("UnexpectedResponse", status, f"server answered {status} with a non-JSON body") from None


def _error(status: int, raw: bytes, headers: Any) -> ForkboxError:
    request_id = headers.get("x-request-id") if headers is not None else None
    ra = headers.get("retry-after") if headers is not None else None
    retry_after = int(ra) if ra is not None and ra.isdigit() else None
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    env = body.get("error")
    if isinstance(env, dict):  # the nested envelope of earlier forkbox servers
        body = {"error": env.get("message"), "code": env.get("code"), "request_id": env.get("requestId")}
    code = body.get("code")
    if isinstance(code, str):
        cls = ERROR_CLASSES.get(code, ForkboxError)
        msg = body.get("error")
        rid = body.get("request_id")
        return cls(code, status, msg if isinstance(msg, str) else code,
                   rid if isinstance(rid, str) else request_id, retry_after)
    text = raw[:200].decode("utf-8", "replace")
    return UnexpectedResponse("UnexpectedResponse", status, f"server answered {status}: {text}", request_id, retry_after)
