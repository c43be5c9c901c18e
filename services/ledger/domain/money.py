"""Money inside the ledger: integer fen (分), never floats."""

FEN_PER_YUAN = 100


def format_fen(fen: int) -> str:
    """Fen as yuan with thousands separators, for messages people read: 120000 -> 1,200.00."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{yuan:,}.{cents:02d}"
