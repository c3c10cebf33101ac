"""forkbox — a zero-dependency Python client for the forkbox code-execution API.

Example::

    from forkbox import Sandbox
    r = Sandbox().run("print(1 + 1)")
    print(r.stdout)   # 2

    s = Sandbox.create(language="python")   # a session: state and files persist
    s.run("x = 41")
    print(s.run("x + 1").result)            # 42
    s.kill()
"""

from .errors import (  # noqa: F401
    ERROR_CLASSES, ConnectionError, ForkboxError, ImageBuildFailed, Internal, InvalidRequest,
    Conflict, Forbidden, Gone, KvmUnavailable, MemoryBudgetExceeded, NotFound, Overloaded, PayloadTooLarge, RateLimited, SandboxCrashed, ShuttingDown,
    TemplateBuildFailed, TemplateNotReady, Unauthorized, UnexpectedResponse, Unsupported,
)
from .sandbox import ExecResult, Result, Sandbox  # noqa: F401
from .session import FileInfo, Files, Session, SessionExecResult, SessionInfo, SideEffects  # noqa: F401

__version__ = "0.1.0"
__all__ = ["Sandbox", "ExecResult", "Result", "Session", "SessionInfo", "SessionExecResult", "SideEffects", "FileInfo", "Files",
           "ForkboxError", *sorted(ERROR_CLASSES)]
