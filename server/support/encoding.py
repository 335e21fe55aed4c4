"""Text that can leave this process: in UTF-8, so in JSON to a client, and in the ledger.

A Python string may hold a lone surrogate where UTF-8 cannot: JSON's `"\\ud800"` decodes to one (the stdlib
reader accepts it, and the modern HTTP transport and the SDK's in-memory client hand such strings on). Text
from a caller or an upstream that is echoed goes through `encodable` first, or sealing the output fails.
"""

__all__ = ["encodable"]


def encodable(text: str) -> str:
    """`text` with each lone surrogate written as its escape (`\\ud800`); most text is ASCII and returned as is."""
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")
