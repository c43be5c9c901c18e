"""Money inside the ledger: integer fen (分), never floats."""

FEN_PER_YUAN = 100
# The largest amount the wire can carry (15 digits of yuan): no total may grow past it.
MAX_FEN = 10**17 - 1


def format_fen(fen: int) -> str:
    """Fen as yuan with thousands separators, for messages people read: 120000 -> 1,200.00."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{yuan:,}.{cents:02d}"
