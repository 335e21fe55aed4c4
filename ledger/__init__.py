"""The audit ledger: every call, allowed or refused, is recorded before anything leaves."""

from ledger.records import Intent, Outcome
from ledger.scrub import REDACTED, Scrubber
from ledger.store import Ledger, LedgerError

__all__ = ["REDACTED", "Intent", "Ledger", "LedgerError", "Outcome", "Scrubber"]
