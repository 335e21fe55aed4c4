"""How long to wait before trying a failed request again, for every upstream the server calls."""

import random

__all__ = ["backoff_s"]


def backoff_s(attempt: int, *, base_s: float, cap_s: float) -> float:
    """Exponential backoff after the `attempt`-th failure (1-based), jittered over its upper half.

    The jitter spreads out clients that failed together, so they do not all come back at the same moment.
    """
    ceiling = min(cap_s, base_s * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)
