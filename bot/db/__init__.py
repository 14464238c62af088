"""Storage: one SQLite database, its migrations, and the query interface every store uses."""

from bot.db.database import Database, Params, Queries, Row, Tx

__all__ = ["Database", "Params", "Queries", "Row", "Tx"]
