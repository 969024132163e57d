"""Schema versions: create or upgrade a catalog on open, refuse one from the future.

The Alembic scripts live in the top-level ``migrations/`` folder of the source tree,
shipped in the wheel as the package ``chunk_memo.migrations``.  They run
programmatically: :func:`ensure_schema` reads the catalog's revision in a cheap read
transaction and, only when it is behind, takes the write lock (``BEGIN IMMEDIATE``),
reads it again and upgrades inside that same transaction.  Many processes opening a
fresh catalog at once therefore create it exactly once, and the others find it done.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect

if TYPE_CHECKING:  # Alembic is imported only when a catalog needs migrating
    from alembic.config import Config
    from alembic.script import ScriptDirectory

from .dialects import backend_for
from .engine import display_url, run_transaction
from .errors import CatalogVersionError

#: The newest schema revision.  Opening an up-to-date catalog compares against it
#: without importing Alembic; a test checks it is the head of ``migrations/``.
HEAD_REVISION = "0003"
_VERSION_TABLE = "alembic_version"


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
        The catalog's revision is unknown to this code (a newer chunk-memo wrote it).
    """
    url = display_url(engine.url)
    head = head_revision()
    revision = run_transaction(engine, current_revision, write=False)
    if revision == head:
        return head
    _check_known(revision, url)

    def upgrade_under_lock(connection: Connection) -> None:
        # Another process may have upgraded between our read and our lock.
        revision = current_revision(connection)
        if revision == head:
            return
        _check_known(revision, url)
        from alembic import command

        command.upgrade(alembic_config(connection), "head")

    _migrate(engine, upgrade_under_lock)
    return head


def _migrate(engine: Engine, work) -> None:
    backend = backend_for(engine.dialect.name)

    def checked(connection: Connection) -> None:
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
