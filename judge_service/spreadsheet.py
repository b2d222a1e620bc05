"""CSV cells that a spreadsheet shows as text, never runs as a formula.

Exports carry texts that callers sent (prompts, answers, rationales, tag values). Excel, LibreOffice
and Google Sheets evaluate a cell starting with `=`, `+`, `-`, `@`, tab or carriage return as a
formula ("CSV injection", OWASP), so such text gets a leading apostrophe. Numbers stay numbers.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """`value` as a CSV cell: None -> "", formula-like text -> apostrophe-prefixed, anything else as is."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
