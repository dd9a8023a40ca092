"""Alembic environment.

weighbridge upgrades the schema itself when it opens a store (it passes a live connection in
`config.attributes`). Developers can also run Alembic directly with `-x url=DB_URL`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from weighbridge.store.schema import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///weighbridge.db")
    engine = create_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
