"""What operators' monitoring hears of the server: the signals the call path gives (`signals`), and the listeners
that turn them into Prometheus metrics and OpenTelemetry traces and metrics. Off unless configured."""

from server.telemetry.signals import (
    NO_SIGNALS,
    BreakerState,
    BudgetLeft,
    CallEnded,
    Fanout,
    LLMExchange,
    LLMRequest,
    Serving,
    Signals,
    TelemetryUnavailable,
)

__all__ = [
    "NO_SIGNALS",
    "BreakerState",
    "BudgetLeft",
    "CallEnded",
    "Fanout",
    "LLMExchange",
    "LLMRequest",
    "Serving",
    "Signals",
    "TelemetryUnavailable",
]
