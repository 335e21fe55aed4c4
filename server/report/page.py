"""The audit report as one HTML page that needs nothing else: its style inline, its charts inline SVG, no script,
and a Content-Security-Policy that lets it fetch nothing even if something in it tried.

The page opens with what `ledger verify` found, loudly when the chain is broken, so nobody reads the figures of a
ledger that was changed without being told first.
"""

from ledger import Report
from ledger.figures import Figures
from server.report.sections import SECTIONS, Context
from server.report.text import table, text

__all__ = ["CSP", "Context", "render"]

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""Nothing may be loaded from anywhere: only the page's own inline style, and images given as data."""

_MOST_FINDINGS = 100

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1b1b1b; background: #ffffff; margin: 0; }
main { max-width: 1000px; margin: 0 auto; padding: 16px 20px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
h3 { font-size: 14px; margin: 16px 0 6px; }
.meta { color: #555555; margin: 0 0 12px; }
.status { border: 2px solid; border-radius: 4px; padding: 10px 14px; margin: 12px 0 8px; }
.status strong { font-size: 16px; }
.ok { border-color: #3d6b40; background: #eef5ee; }
.incomplete { border-color: #8a6d00; background: #fff8e0; }
.tampered, .unverified { border-color: #7a0000; background: #fdeeee; color: #5c0000; }
.tampered strong { font-size: 20px; }
table { border-collapse: collapse; margin: 6px 0 10px; }
th, td { border-bottom: 1px solid #e2e2e2; padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child { white-space: nowrap; }
code, .hash { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
.note { color: #555555; font-size: 13px; }
svg { display: block; max-width: 100%; height: auto; margin: 6px 0; }
"""


def render(figures: Figures, verified: Report, context: Context) -> str:
    """The whole page."""
    window = f"calls recorded since {figures.since}" if figures.since else "every recorded call"
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>planner-mcp audit report: {text(context.ledger)}</title>",
        f"<style>{_STYLE}</style></head><body><main>",
        "<h1>planner-mcp audit report</h1>",
        f'<p class="meta">Ledger <code>{text(context.ledger)}</code>; {text(window)}; made {text(context.generated)}.'
        f" The figures count the chained rows up to seq {figures.upto:,}, the head that was verified.</p>",
        _status(verified),
        *(section(figures, context) for section in SECTIONS),
        "</main></body></html>\n",
    ]
    return "".join(parts)


def _status(report: Report) -> str:
    head = (
        f"{report.rows:,} chained rows, head seq {report.head_seq:,}, hash "
        f'<span class="hash" id="head-hash">{text(report.head_hash)}</span>'
    )
    keyed = f"; {report.keyed_rows:,} keyed (HMAC)" if report.keyed_rows else ""
    words = {
        "ok": "Verified: every hash and link of the chain holds.",
        "incomplete": "Verified, with calls left open: the chain holds, and some calls have an intent but no outcome.",
        "unverified": "NOT VERIFIED: the chain's keyed rows cannot be checked without its key "
        "(PLANNER_MCP_LEDGER_KEY_FILE). Nothing below is vouched for.",
        "tampered": "THE CHAIN IS BROKEN: this ledger was changed after it was written. The figures below count rows "
        "that cannot be trusted; each problem found is listed here.",
    }
    findings = report.findings[:_MOST_FINDINGS]
    listed = table(("problem", "seq", "what was found"), [(f.kind, f.seq, f.detail) for f in findings], numeric={1})
    more = len(report.findings) - len(findings)
    rest = f'<p class="note">and {more:,} more: <code>planner-mcp ledger verify</code> lists them all.</p>'
    return (
        f'<div class="status {report.status}" id="status" data-status="{report.status}">'
        f"<strong>{words[report.status]}</strong><br>{head}{keyed}."
        + (listed if findings else "")
        + (rest if more else "")
        + "</div>"
    )
