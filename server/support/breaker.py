"""A circuit breaker: after repeated failures of a dependency, fail fast until it has had time to recover.

Closed: calls go through, consecutive failures are counted. Open: after `threshold` failures in a row,
calls are refused at once for `cooldown_s`. Half-open: then one trial call goes through; its success
closes the breaker, its failure opens it for another cooldown. Used from the event loop only.
"""

import time
from collections.abc import Callable

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    def __init__(self, *, threshold: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.failures = 0
        self.last_failure: str | None = None
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self._opened_at >= self.cooldown_s else "open"

    def retry_in_s(self) -> float:
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.cooldown_s - (self._clock() - self._opened_at))

    def admit(self) -> bool:
        """Whether a call may go through now. In half-open, only one trial at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def succeeded(self) -> None:
        self.failures = 0
        self.last_failure = None
        self._opened_at = None
        self._trial_running = False

    def failed(self, kind: str) -> None:
        self.failures += 1
        self.last_failure = kind
        if self._trial_running or self.failures >= self.threshold:
            self._opened_at = self._clock()
        self._trial_running = False

    def released(self) -> None:
        """A call that was admitted ended without telling about the dependency's health (e.g. cancelled)."""
        self._trial_running = False
