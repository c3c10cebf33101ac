"""Error classes of the forkbox client.

Every platform error the API returns carries an envelope
``{"error": "<message>", "code": "<Code>", "request_id": "…"}`` (the older nested
``{"error": {"code", "message", "requestId"}}`` is still read); the client raises the class
named by ``code`` (all subclasses of :class:`ForkboxError`). A program that
fails inside the sandbox is *not* an error: it is a result with its exit code.
"""

from __future__ import annotations

from typing import Optional


class ForkboxError(Exception):
    """Base of every error the client raises.

    Attributes:
        code: the API error code (``"RateLimited"``…), or ``"ConnectionError"`` /
            ``"UnexpectedResponse"`` for failures on the client side.
        status: HTTP status (0 when no response arrived).
        message: human-readable explanation.
        request_id: the server's request id, to find the request in its log.
        retry_after: seconds to wait before retrying (429 and 503), else None.
    """

    def __init__(self, code: str, status: int, message: str,
                 request_id: Optional[str] = None, retry_after: Optional[int] = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, message={self.message!r}, request_id={self.request_id!r})"


class InvalidRequest(ForkboxError):
    """400/415: the request is invalid; the message names the field."""


class PayloadTooLarge(ForkboxError):
    """413: the request body is larger than the server accepts."""


class Unauthorized(ForkboxError):
    """401: missing or wrong API key."""


class Forbidden(ForkboxError):
    """403: the server runs without auth and refuses this Host name (DNS-rebinding guard)."""


class RateLimited(ForkboxError):
    """429: this key's rate limit is exhausted; see ``retry_after``."""


class Overloaded(ForkboxError):
    """503: the server's queue is full; see ``retry_after``."""


class NotFound(ForkboxError):
    """404: no such route or resource."""


class Conflict(ForkboxError):
    """409: the session is busy (one exec at a time) or the name is taken."""


class Gone(ForkboxError):
    """410: the session expired, was deleted, or its VM died."""


class TemplateNotReady(ForkboxError):
    """503: the language template is not built or loaded yet."""


class TemplateBuildFailed(ForkboxError):
    """The server could not build the template."""


class ImageBuildFailed(ForkboxError):
    """The server could not build the read-only image."""


class KvmUnavailable(ForkboxError):
    """503: the server has no usable /dev/kvm."""


class SandboxCrashed(ForkboxError):
    """500: the sandbox crashed in a way the server reports as an error."""


class Unsupported(ForkboxError):
    """501: the feature is not supported."""


class ShuttingDown(ForkboxError):
    """503: the server is shutting down."""


class MemoryBudgetExceeded(ForkboxError):
    """503: the server's memory budget for live sandboxes is used up; retry later."""


class Internal(ForkboxError):
    """500: an unexpected server error; quote ``request_id`` when reporting it."""


class ConnectionError(ForkboxError):  # noqa: A001 - mirrors the API/JS class name
    """The server could not be reached (refused, reset, DNS, client timeout)."""


class UnexpectedResponse(ForkboxError):
    """The server answered with something that is not the API's JSON."""


ERROR_CLASSES = {cls.__name__: cls for cls in (
    InvalidRequest, PayloadTooLarge, Unauthorized, Forbidden, RateLimited, Overloaded, NotFound, Conflict, Gone,
    TemplateNotReady, TemplateBuildFailed, ImageBuildFailed, KvmUnavailable, SandboxCrashed,
    Unsupported, ShuttingDown, MemoryBudgetExceeded, Internal, ConnectionError, UnexpectedResponse,
)}
