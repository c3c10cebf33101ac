"""What the client's modules share: the result of a run (``ExecResult``), its rich
outputs (``Result``) and the request body of a run (``_wire``). ``sandbox`` and
``session`` both import it, so neither imports the other at load time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from .errors import InvalidRequest


RESULT_FORMATS = ("text", "html", "markdown", "svg", "png", "jpeg", "pdf", "latex", "json", "javascript")


@dataclass(frozen=True)
class Result:
    """One displayed object (a MIME bundle), as E2B's code-interpreter ``Result``.

    ``text`` is text/plain; ``png``, ``jpeg`` and ``pdf`` are base64; ``json`` is a value;
    ``is_main_result`` marks a session run's last expression (not a ``display()`` call);
    ``extra`` holds formats of other MIME types, by MIME type.

    Example::

        r = Sandbox().run("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()")
        png = base64.b64decode(r.results[0].png)
    """

    text: Optional[str] = None
    html: Optional[str] = None
    markdown: Optional[str] = None
    svg: Optional[str] = None
    png: Optional[str] = None
    jpeg: Optional[str] = None
    pdf: Optional[str] = None
    latex: Optional[str] = None
    json: Any = None
    javascript: Optional[str] = None
    is_main_result: bool = False
    extra: Optional[Dict[str, Any]] = None

    def formats(self) -> List[str]:
        """The formats this result has (``["text", "png"]``), then the MIME types in ``extra``."""
        return [f for f in RESULT_FORMATS if getattr(self, f) is not None] + list(self.extra or {})

    @classmethod
    def from_wire(cls, w: Mapping[str, Any]) -> "Result":
        kw: Dict[str, Any] = {f: w[f] for f in RESULT_FORMATS if f != "json" and isinstance(w.get(f), str)}
        if w.get("json") is not None:
            kw["json"] = w["json"]
        extra = w.get("extra")
        return cls(is_main_result=w.get("is_main_result") is True,
                   extra=dict(extra) if isinstance(extra, dict) else None, **kw)


@dataclass(frozen=True)
class ExecResult:
    """Result of one execution. A failing program has a non-zero ``exit_code``.

    ``outcome`` is ``"exited"``, ``"timeout"``, ``"crashed"`` or ``"cancelled"``.
    ``results`` are the rich outputs (:class:`Result`: ``display(obj)``, matplotlib figures,
    a session's last expression) in display order; ``results_truncated`` says some were dropped.
    """

    id: str
    stdout: str
    stderr: str
    exit_code: int
    outcome: str
    fork_time_ms: float
    exec_time_ms: float
    total_time_ms: float
    stdout_truncated: bool
    stderr_truncated: bool
    crash: Optional[str] = None
    results: List[Result] = field(default_factory=list)
    results_truncated: bool = False

    def __str__(self) -> str:
        """The program's stdout, so ``print(sb.run(...))`` and ``f"{result}"`` show its output."""
        return self.stdout

    @property
    def output(self) -> str:
        """Zeroboot's name for the program's output: stdout alone (stderr stays in ``stderr``)."""
        return self.stdout

    @property
    def duration_ms(self) -> float:
        """Zeroboot's name for ``total_time_ms``: the whole exec, fork included."""
        return self.total_time_ms

    @classmethod
    def from_wire(cls, r: Mapping[str, Any]) -> "ExecResult":
        return cls(
            id=r["id"], stdout=r["stdout"], stderr=r["stderr"], exit_code=r["exit_code"],
            outcome=r.get("outcome", "exited"), fork_time_ms=r["fork_time_ms"],
            exec_time_ms=r["exec_time_ms"], total_time_ms=r["total_time_ms"],
            stdout_truncated=r.get("stdout_truncated", False),
            stderr_truncated=r.get("stderr_truncated", False), crash=r.get("crash"),
            results=[Result.from_wire(x) for x in r.get("results") or [] if isinstance(x, dict)],
            results_truncated=r.get("results_truncated", False) is True,
        )


def _wire(code: Any, language: str = "python", timeout: float = 30,
          env: Optional[Mapping[str, str]] = None, stdin: Optional[str] = None,
          template: Optional[str] = None) -> Dict[str, Any]:
    if not isinstance(code, str):
        raise InvalidRequest("InvalidRequest", 0, "code must be a string")
    body: Dict[str, Any] = {"code": code, "language": language, "timeout_seconds": timeout}
    if template is not None:
        body["template"] = template
    if env is not None:
        body["env"] = dict(env)
    if stdin is not None:
        body["stdin"] = stdin
    return body
