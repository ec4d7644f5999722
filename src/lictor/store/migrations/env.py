"""Alembic environment: migrate the connection that ``Store.migrate`` passes in.

There is no ``alembic.ini`` and no URL here on purpose: migrations run only through
:meth:`lictor.store.Store.migrate`, which opens the transaction, takes the migration
lock and hands its connection over in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from lictor.store.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "Lictor's migrations run through lictor.store.open_store(url).migrate(), "
        "not the alembic command line"
    )
context.configure(connection=connection, target_metadata=metadata)
# The caller's transaction is already open, so this joins it rather than starting one.
with context.begin_transaction():
    context.run_migrations()
