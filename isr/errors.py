"""Every exception isr raises on purpose.

    IsrError                        root: one line a user can act on
    ├── SiteError                   the site folder, isr.json or a page module is unusable
    │   └── ConfigError             isr.json is malformed
    ├── BadPath (ValueError)        a request path that can never name a page (HTTP 400)
    ├── CacheError                  a cache record could not be read or written
    │   └── CacheUnavailable        the shared cache (Redis) did not answer in time
    └── FunctionError               an invocation failed; carries Vercel's code and status
        ├── FunctionTimeout         504 FUNCTION_INVOCATION_TIMEOUT
        ├── FunctionFailed          500 FUNCTION_INVOCATION_FAILED
        ├── ResponseTooLarge        500 FUNCTION_RESPONSE_PAYLOAD_TOO_LARGE
        ├── PayloadTooLarge         413 FUNCTION_PAYLOAD_TOO_LARGE
        ├── NoResponse              502 NO_RESPONSE_FROM_FUNCTION
        ├── Throttled               503 FUNCTION_THROTTLED
        ├── BadRequestBody          400 BAD_REQUEST (a body the handler cannot be given)
        └── BodyTimeout             408 REQUEST_TIMEOUT (a request body that stopped arriving)
"""

from __future__ import annotations

from typing import ClassVar


class IsrError(Exception):
    """Root of isr's errors; str() is a one-line message for the user."""


class SiteError(IsrError):
    pass


class ConfigError(SiteError):
    pass


class BadPath(IsrError, ValueError):
    pass


class CacheError(IsrError):
    pass


class CacheUnavailable(CacheError):
    pass


class FunctionError(IsrError):
    """A failed invocation. `detail` (a traceback) goes to logs, never to responses."""

    code: ClassVar[str] = "FUNCTION_INVOCATION_FAILED"
    status: ClassVar[int] = 500

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail
        self.logs: list[str] = []  # what the function printed before it failed
        self.memory_mb = 0.0  # its peak memory, where known


class FunctionTimeout(FunctionError):
    code = "FUNCTION_INVOCATION_TIMEOUT"
    status = 504


class FunctionFailed(FunctionError):
    code = "FUNCTION_INVOCATION_FAILED"
    status = 500


class ResponseTooLarge(FunctionError):
    code = "FUNCTION_RESPONSE_PAYLOAD_TOO_LARGE"
    status = 500


class PayloadTooLarge(FunctionError):
    code = "FUNCTION_PAYLOAD_TOO_LARGE"
    status = 413


class NoResponse(FunctionError):
    code = "NO_RESPONSE_FROM_FUNCTION"
    status = 502


class Throttled(FunctionError):
    code = "FUNCTION_THROTTLED"
    status = 503


class BadRequestBody(FunctionError):
    code = "BAD_REQUEST"
    status = 400


class BodyTimeout(FunctionError):
    code = "REQUEST_TIMEOUT"
    status = 408
