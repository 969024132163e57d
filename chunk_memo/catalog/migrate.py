"""Schema versions: create or upgrade a catalog on open, refuse one from the future.

The Alembic scripts live in the top-level ``migrations/`` folder of the source tree,
shipped in the wheel as the package ``chunk_memo.migrations``.  They run
programmatically: :func:`ensure_schema` reads the catalog's revision in a cheap read
transaction and, only when it is behind, takes the write lock (``BEGIN IMMEDIATE`` on
SQLite, a transaction-level advisory lock on PostgreSQL), reads it again and migrates
inside that same transaction.  Many processes opening a fresh catalog at once
therefore create it exactly once, and the others find it done.

An empty database gets the schema on open, on every backend.  An older schema is
upgraded on open only in a local SQLite file; a shared server is upgraded by an
explicit step, once, while no older chunk-memo writes to it (opening it before is a
:class:`~chunk_memo.catalog.errors.CatalogVersionError` saying what to run)::

    python -m chunk_memo.catalog.migrate postgresql+psycopg://user@host/catalog

or :func:`upgrade_catalog` from Python.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import sys
from pathlib import Path

from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:  # Alembic is imported only when a catalog needs migrating
    from alembic.config import Config
    from alembic.script import ScriptDirectory

from .dialects import backend_for
from .engine import display_url, get_engine, run_transaction
from .errors import CatalogError, CatalogVersionError

#: The newest schema revision.  Opening an up-to-date catalog compares against it
#: without importing Alembic; a test checks it is the head of ``migrations/``.
HEAD_REVISION = "0003"
_VERSION_TABLE = "alembic_version"
#: The command that upgrades a server's schema (named by CatalogVersionError).
UPGRADE_COMMAND = "python -m chunk_memo.catalog.migrate"


def migrations_folder() -> Path:
    """The folder of the Alembic environment (``env.py`` and ``versions/``).

    The installed package ``chunk_memo.migrations`` when there is one; otherwise the
    ``migrations/`` folder next to the ``chunk_memo`` package (a source checkout, or
    an editable install made before the package mapping existed).

    Raises
    ------
    RuntimeError
        Neither exists: the installation is incomplete.
    """
    try:
        spec = importlib.util.find_spec("chunk_memo.migrations")
    except ImportError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    source_tree = Path(__file__).resolve().parents[2] / "migrations"
    if (source_tree / "env.py").is_file():
        return source_tree
    raise RuntimeError(
        "the catalog migrations are missing: neither the package chunk_memo.migrations "
        f"nor {source_tree} exists; reinstall chunk-memo"
    )


def alembic_config(connection: Connection | None = None) -> "Config":
    """An Alembic configuration for the catalog scripts (no ``alembic.ini`` needed).

    Parameters
    ----------
    connection : sqlalchemy.Connection, optional
        Handed to ``env.py`` through ``config.attributes["connection"]``; the
        migration then runs inside that connection's transaction.
    """
    from alembic.config import Config

    config = Config()
    # ConfigParser interpolation would read a "%" in the path as a directive.
    config.set_main_option("script_location", str(migrations_folder()).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.lru_cache(maxsize=None)
def _scripts() -> "ScriptDirectory":
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest schema revision this version of chunk-memo knows."""
    return HEAD_REVISION


def scripts_head_revision() -> str:
    """The head of the Alembic scripts (equal to :data:`HEAD_REVISION`; tests check)."""
    return _scripts().get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The catalog's schema revision (``None``: empty database, never migrated)."""
    if not inspect(connection).has_table(_VERSION_TABLE):
        return None
    heads = connection.exec_driver_sql(f"SELECT version_num FROM {_VERSION_TABLE}").scalars().all()
    if len(heads) > 1:
        raise CatalogVersionError(
            f"the catalog has several schema revisions at once ({', '.join(heads)}); "
            "it was modified by hand or by a branched chunk-memo"
        )
    return heads[0] if heads else None


def _check_known(revision: str | None, url: str) -> None:
    if revision is None:
        return
    known = {script.revision for script in _scripts().walk_revisions()}
    if revision not in known:
        raise CatalogVersionError(
            f"the catalog {url} is at schema revision {revision!r}, which this version "
            f"of chunk-memo does not know (its newest is {head_revision()!r}); it was "
            "written by a newer chunk-memo: upgrade chunk-memo to open it"
        )


def _check_upgradable(revision: str | None, engine: Engine, url: str) -> None:
    if revision is None or backend_for(engine.dialect.name).upgrades_on_open:
        return
    masked = " (with the password that is masked here)" if engine.url.password else ""
    raise CatalogVersionError(
        f"the catalog {url} is at schema revision {revision!r}, and this version of "
        f"chunk-memo needs revision {head_revision()!r}; a shared catalog server is "
        "upgraded explicitly, once, while no older chunk-memo uses it: run "
        f"`{UPGRADE_COMMAND} {url}`{masked}, or call "
        "chunk_memo.catalog.upgrade_catalog(url)"
    )


def ensure_schema(engine: Engine) -> str:
    """Create or upgrade the catalog to the head revision; idempotent and race-free.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        From :func:`chunk_memo.catalog.engine.get_engine`.

    Returns
    -------
    str
        The head revision the catalog is now at.

    Raises
    ------
    CatalogVersionError
        The catalog's revision is unknown to this code (a newer chunk-memo wrote it),
        or it is older and the backend upgrades only explicitly (a server: see
        :func:`upgrade_catalog`).
    """
    url = display_url(engine.url)
    head = head_revision()
    revision = run_transaction(engine, current_revision, write=False)
    if revision == head:
        return head
    _check_known(revision, url)
    _check_upgradable(revision, engine, url)

    def upgrade_under_lock(connection: Connection) -> None:
        # Another process may have upgraded between our read and our lock.
        revision = current_revision(connection)
        if revision == head:
            return
        _check_known(revision, url)
        _check_upgradable(revision, engine, url)
        from alembic import command

        command.upgrade(alembic_config(connection), "head")

    _migrate(engine, upgrade_under_lock)
    return head


def _migrate(engine: Engine, work) -> None:
    backend = backend_for(engine.dialect.name)

    def checked(connection: Connection) -> None:
        backend.lock_schema(connection)
        work(connection)
        backend.check_migrated(connection)

    run_transaction(engine, checked, write=True, around=backend.migration_session)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the catalog to ``revision`` in one write transaction (tests, tools).

    Opening a catalog does this to head already; an explicit revision (``"0001"``)
    builds old catalogs for upgrade tests.
    """
    from alembic import command

    _migrate(engine, lambda connection: command.upgrade(alembic_config(connection), revision))


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade the catalog to ``revision`` in one write transaction (tools, tests).

    For going back to an older chunk-memo; the data of dropped columns and tables
    is lost.
    """
    from alembic import command

    _migrate(engine, lambda connection: command.downgrade(alembic_config(connection), revision))


def upgrade_catalog(url: str | URL) -> tuple[str | None, str]:
    """Create or upgrade the catalog database at ``url`` to this chunk-memo's schema.

    The explicit step a shared server needs after chunk-memo is updated (a local
    SQLite catalog is upgraded when it is opened).  Run it once, while no process of
    an older chunk-memo writes to the catalog.  The upgrade is one transaction:
    it either completes or leaves the schema as it was.  Idempotent, and safe to
    run from several places at once (one upgrades, the others find it done).

    Parameters
    ----------
    url : str or sqlalchemy.engine.URL
        SQLAlchemy URL of the catalog database.

    Returns
    -------
    tuple of (str or None, str)
        The revision the catalog was at (``None``: an empty database) and the one it
        is at now.

    Raises
    ------
    CatalogVersionError
        The catalog was written by a newer chunk-memo.

    Examples
    --------
    >>> upgrade_catalog("postgresql+psycopg://sweeps@db.lab/catalog")  # doctest: +SKIP
    ('0002', '0003')
    """
    engine = get_engine(url)
    shown = display_url(engine.url)
    head = head_revision()
    found: list[str | None] = []

    def upgrade_under_lock(connection: Connection) -> None:
        found[:] = [current_revision(connection)]
        if found[0] == head:
            return
        _check_known(found[0], shown)
        from alembic import command

        command.upgrade(alembic_config(connection), "head")

    _migrate(engine, upgrade_under_lock)
    return found[0], head


def main(argv: list[str] | None = None) -> int:
    """``python -m chunk_memo.catalog.migrate [URL]``: upgrade a catalog's schema."""
    parser = argparse.ArgumentParser(
        prog=UPGRADE_COMMAND,
        description="Create or upgrade a chunk-memo catalog database to the schema "
                    "revision this chunk-memo needs. Run it once after updating "
                    "chunk-memo, while no older chunk-memo uses the catalog.")
    parser.add_argument(
        "url", nargs="?", default=os.environ.get("CHUNK_MEMO_CATALOG_URL"),
        help="SQLAlchemy URL of the catalog, e.g. postgresql+psycopg://user@host/db "
             "(default: $CHUNK_MEMO_CATALOG_URL)")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("no catalog URL given, and CHUNK_MEMO_CATALOG_URL is not set")
    try:
        before, after = upgrade_catalog(args.url)
    except (CatalogError, SQLAlchemyError, ValueError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    shown = display_url(args.url)
    if before == after:
        print(f"{shown}: already at schema revision {after}")
    else:
        print(f"{shown}: upgraded from schema revision {before or '(empty)'} to {after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
