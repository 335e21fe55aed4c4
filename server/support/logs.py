"""Logs go to stderr (stdout belongs to the protocol): as text for people, or one JSON object per line for
log collectors, with a call's fields (request id, action, decision, error kind, duration) and a refused HTTP
request's (status, reason, address, method, path) as keys.

A logged value can come from a caller (a tool name, a token's `kid`, an exception's message), so no value may
start a line of its own, and none may break one, however a reader splits lines (at "\\n" only, or at every line
break Unicode knows). In text, a record's message is one line with its control characters, line separators,
bidirectional controls and invisible characters escaped as everything else the server writes to a terminal is
(see server.support.terminal); the lines of a traceback after it are indented and escaped the same way, so only a
record's first line starts at the margin. In JSON, the same characters are written as \\u escapes: each line decodes
to the very values logged.
"""

import json
import logging
import sys
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal

from ledger import utc_timestamp
from server.support.terminal import escape, escape_json

__all__ = ["CALL_FIELDS", "HTTP_REFUSAL_FIELDS", "LogFormat", "configure"]

LogFormat = Literal["text", "json"]
CALL_FIELDS = ("request_id", "action", "decision", "error_type", "duration_ms")
"""What the gate attaches to its one line per call (`extra=`), so a collector can index them."""
HTTP_REFUSAL_FIELDS = ("status", "reason", "detail", "remote", "method", "path", "suppressed")
"""What a refused HTTP request's line carries (server.transports.http.refusals), and the count a rate-limited window
left out."""
_FIELDS = CALL_FIELDS + HTTP_REFUSAL_FIELDS

_WIRE_LOGGERS = ("httpcore", "httpcore2", "httpx", "httpx2", "openai", "urllib3", "hvac")
"""The HTTP libraries under the LLM client and the Vault store. Below WARNING they log the wire itself (response
headers, reason phrases, request ids, request lines), which an upstream writes and can fill with the key it was
sent: they log at WARNING and above only, whatever --log-level says. The gate's line per call says what happened."""
_INDENT = "    "
_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


def _indented(text: str) -> str:
    return "\n".join(_INDENT + escape(line) for line in text.split("\n"))


class _TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        return f"{record.asctime} {record.levelname} {record.name}: {escape(record.message)}"

    def formatException(self, ei: _ExcInfo) -> str:
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))


class _JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": utc_timestamp(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({f: getattr(record, f) for f in _FIELDS if hasattr(record, f)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return escape_json(json.dumps(entry, ensure_ascii=False, default=str))


def configure(level: str, log_format: LogFormat) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JSONFormatter() if log_format == "json" else _TextFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in _WIRE_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
