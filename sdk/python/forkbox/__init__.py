"""forkbox — a zero-dependency Python client for the forkbox code-execution API.

Example::

    from forkbox import Sandbox
    r = Sandbox().run("print(1 + 1)")
    print(r.stdout)   # 2
"""

from .errors import (  # noqa: F401
    ERROR_CLASSES, ConnectionError, ForkboxError, ImageBuildFailed, Internal, InvalidRequest,
    Conflict, Forbidden, Gone, KvmUnavailable, MemoryBudgetExceeded, NotFound, Overloaded, PayloadTooLarge, RateLimited, SandboxCrashed, ShuttingDown,
    TemplateBuildFailed, TemplateNotReady, Unauthorized, UnexpectedResponse, Unsupported,
)
from .sandbox import ExecResult, Sandbox  # noqa: F401

__version__ = "0.1.0"
__all__ = ["Sandbox", "ExecResult", "ForkboxError", *sorted(ERROR_CLASSES)]
