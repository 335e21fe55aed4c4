"""The audit ledger: every call, allowed or refused, is recorded before anything leaves, in one hash chain."""

from ledger.budget import BudgetExhausted, Reservation
from ledger.errors import LedgerError
from ledger.records import Intent, Outcome, utc_now, utc_timestamp
from ledger.scrub import REDACTED, Scrubber
from ledger.store import Ledger, Position
from ledger.verify import EXIT_CODES, Checkpoint, Finding, Report, checkpoint, verify

__all__ = [
    "EXIT_CODES",
    "REDACTED",
    "BudgetExhausted",
    "Checkpoint",
    "Finding",
    "Intent",
    "Ledger",
    "LedgerError",
    "Outcome",
    "Position",
    "Report",
    "Reservation",
    "Scrubber",
    "checkpoint",
    "utc_now",
    "utc_timestamp",
    "verify",
]
