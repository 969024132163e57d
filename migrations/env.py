"""Alembic environment of the chunk-memo catalog.

The catalog runs migrations itself (:func:`chunk_memo.catalog.migrate.upgrade`): it
opens a write transaction (``BEGIN IMMEDIATE`` on SQLite) and hands its connection
over in ``config.attributes["connection"]``, so that checking the revision and
upgrading happen under one lock and concurrent first opens cannot race.  Alembic
sees that the connection is already in a transaction and runs inside it.

Run from the command line (``alembic -x url=sqlite:///path/catalog.sqlite ...``
with ``script_location`` pointing here) the environment opens its own engine with
the catalog's pragmas, and SQLite's foreign keys off while tables are rebuilt.
"""
from alembic import context

config = context.config


def _run_on(connection) -> None:
    # render_as_batch: SQLite can only ALTER a few things in place; batch mode
    # rebuilds a table when it must, and is a no-op wrapper on other backends.
    context.configure(connection=connection, target_metadata=None, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError(
            "no catalog to migrate: pass a connection in config.attributes['connection'] "
            "or a URL with `alembic -x url=...`"
        )
    from chunk_memo.catalog.dialects import backend_for
    from chunk_memo.catalog.engine import get_engine, run_transaction

    engine = get_engine(url)
    run_transaction(engine, _run_on, write=True,
                    around=backend_for(engine.dialect.name).migration_session)


if context.is_offline_mode():
    raise RuntimeError(
        "the chunk-memo catalog does not support offline (--sql) migrations; "
        "open the catalog with chunk_memo.catalog.Catalog instead"
    )
_run_online()
