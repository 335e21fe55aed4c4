"""Logs go to stderr (stdout belongs to the protocol): as text for people, or one JSON object per line for
log collectors, with a call's fields (request id, action, decision, error kind, duration) and a refused HTTP
request's (status, reason, address, method, path) as keys."""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

__all__ = ["CALL_FIELDS", "HTTP_REFUSAL_FIELDS", "LogFormat", "configure"]

LogFormat = Literal["text", "json"]
CALL_FIELDS = ("request_id", "action", "decision", "error_type", "duration_ms")
"""What the gate attaches to its one line per call (`extra=`), so a collector can index them."""
HTTP_REFUSAL_FIELDS = ("status", "reason", "detail", "remote", "method", "path", "suppressed")
"""What a refused HTTP request's line carries (server.http.refusals), and the count a rate-limited window left out."""
_FIELDS = CALL_FIELDS + HTTP_REFUSAL_FIELDS


class _JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({f: getattr(record, f) for f in _FIELDS if hasattr(record, f)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str, log_format: LogFormat) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
