"""Storage: one SQLite database, its migrations, and the query interface every store uses."""

from bot.db.database import BodySuspended, Database, Params, Queries, Row, ThreadTx, Tx

__all__ = ["BodySuspended", "Database", "Params", "Queries", "Row", "ThreadTx", "Tx"]
