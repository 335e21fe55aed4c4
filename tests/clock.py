"""A clock a test moves by hand: a breaker's cooldown passes when the test says, not after a sleep."""

__all__ = ["ManualClock"]


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
