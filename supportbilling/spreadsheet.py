"""Text cells of every file a spreadsheet opens (billing's exports, the portal's work log, the
operator report): below every app, so that each of them applies the one rule."""

# A spreadsheet reads a cell that starts with one of these as a formula (OWASP, "CSV
# injection"): ``=HYPERLINK(...)``, ``+cmd|...``, ``@SUM(...)``, ``-2+3``.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: str) -> str:
    """``value`` as a spreadsheet must show it, never run it: a leading single quote makes a
    would-be formula plain text. Numbers (amounts, quantities) never pass here, so ``-10.00``
    stays a number."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value
