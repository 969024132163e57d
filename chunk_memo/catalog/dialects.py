"""Everything that differs between database backends, in one place.

The rest of the catalog builds portable SQLAlchemy Core and asks its :class:`Backend`
for the few pieces no portable construct covers: upserts, a bound JSON array or
object read as rows (how a batch of 10^5 keys travels in one parameter, clear of
SQLite's 32766-variable limit), JSON aggregation, connection setup, which errors
mean "locked, try again", how schema migrations are serialized and whether opening
an older schema upgrades it.  Two backends: SQLite (``sqlite3``, a file per catalog)
and PostgreSQL (``psycopg`` 3, one server shared by many roots and machines).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from sqlalchemy import Engine, cast, event, func, text, true
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import ColumnElement, FromClause

#: Execution option that marks a connection's next transaction as a write.
WRITE_OPTION = "chunk_memo_write"
#: Execution option that marks a connection's next transaction as a catalog read
#: (unmarked transactions, e.g. a tool's own ``engine.begin()``, get the defaults).
READ_OPTION = "chunk_memo_read"

#: How long a SQLite connection waits for a lock before SQLITE_BUSY (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Memory-map this much of the database file: random reads of the chunk index skip
#: the page-cache copy (measured: lookups in a 10^6-row index 1.35x faster).
SQLITE_MMAP_BYTES = 256 * 2**20
#: Page cache per connection, in KiB (negative: SQLite's "KiB" convention); it holds
#: the pages a write batch dirties in a large index (allocated as used).
SQLITE_CACHE_KIB = 32 * 1024

# A key needs JSON escaping if it holds a quote, a backslash or a control character.
_NEEDS_JSON_ESCAPE = re.compile(r'["\\\x00-\x1f]')


class Backend:
    """The dialect-specific pieces of the catalog (abstract)."""

    name = ""
    #: Whether opening a catalog at an older schema revision upgrades it.  A local
    #: file may be upgraded by whoever opens it; a shared server is upgraded once,
    #: explicitly (``python -m chunk_memo.catalog.migrate URL``), while no process
    #: of an older chunk-memo still writes to it.
    upgrades_on_open = True
    #: Why a transaction may stay locked for minutes (the end of CatalogBusyError).
    busy_hint = "another process holds a long transaction"
    #: Whether write transactions run one at a time, each seeing every commit made
    #: before it began (SQLite's single write lock).  Otherwise a statement that
    #: waited for another transaction's row lock judged other rows on a snapshot
    #: taken before that transaction committed (see ``Leases.claim_chunks``).
    serializes_writes = True

    def engine_url(self, url: URL) -> URL:
        """``url`` with the driver the catalog uses (raises for unsupported ones)."""
        return url

    def engine_arguments(self, url: URL) -> dict[str, Any]:
        """Extra keyword arguments for ``create_engine``."""
        return {}

    def configure_engine(self, engine: Engine) -> None:
        """Install connection and transaction hooks on a fresh engine."""

    def prepare_connection(self, dbapi_connection) -> None:
        """Set up a driver connection opened outside the engine's pool, as the pool would."""

    def insert(self, table):
        """The dialect's INSERT construct (one that supports ON CONFLICT)."""
        raise NotImplementedError

    def upsert(self, table, conflict: Sequence[str], update: Sequence[str], values: dict):
        """INSERT ``values``; on a conflict on ``conflict`` columns, overwrite ``update``."""
        statement = self.insert(table).values(values)
        return statement.on_conflict_do_update(
            index_elements=[table.c[name] for name in conflict],
            set_={name: statement.excluded[name] for name in update},
        )

    def insert_ignore(self, table, conflict: Sequence[str], values: dict):
        """INSERT ``values`` unless a row with the same ``conflict`` columns exists."""
        statement = self.insert(table).values(values)
        return statement.on_conflict_do_nothing(index_elements=[table.c[n] for n in conflict])

    def json_array_rows(self, source, name: str) -> FromClause:
        """Rows ``(value)`` of a JSON array of strings, ``source`` a bound param or column."""
        raise NotImplementedError

    def json_object_rows(self, source, name: str) -> FromClause:
        """Rows ``(key, value)`` of a JSON object, ``source`` a bound param or column."""
        raise NotImplementedError

    def nested_array_join(self, outer: FromClause, inner: FromClause):
        """Join ``outer`` with ``inner``, a ``json_array_rows`` over one of its columns."""
        raise NotImplementedError

    def json_string_list(self, column) -> ColumnElement:
        """Aggregate of ``column`` as a JSON array (one value crosses the driver)."""
        raise NotImplementedError

    def decode_json_list(self, value) -> list[str]:
        """Python list of what :meth:`json_string_list` returned (``None``: empty)."""
        raise NotImplementedError

    def native_rows(self, rows: list[tuple]) -> list[tuple]:
        """Rows fetched from the driver, with blobs as ``bytes`` (as SQLAlchemy would).

        ``sqlite3`` already returns ``bytes``; psycopg returns ``memoryview``.
        """
        return rows

    def is_lock_error(self, error: BaseException) -> bool:
        """Whether ``error`` means "another process holds the lock: try again"."""
        return False

    @contextmanager
    def migration_session(self, connection) -> Iterator[None]:
        """Entered on a connection around a migration's transaction (default: nothing)."""
        yield

    def lock_schema(self, connection) -> None:
        """First statement of a migration's transaction: wait for other migrators.

        Held until the transaction ends, so that concurrent first opens create the
        schema exactly once.  Default: nothing (the write transaction locks enough).
        """

    def check_migrated(self, connection) -> None:
        """Raise if a migration left the data inconsistent (inside its transaction)."""

    def checkpoint_sql(self) -> str | None:
        """Statement that folds the write-ahead log back into the database, if any."""
        return None

    def database_file(self, url: URL) -> Path | None:
        """The database file, when the database is a local file."""
        return None

    def database_folder(self, url: URL) -> Path | None:
        """The folder holding the database file, when the database is a local file."""
        path = self.database_file(url)
        return None if path is None else path.parent


class SQLiteBackend(Backend):
    """SQLite through the standard library's ``sqlite3`` (pysqlite)."""

    name = "sqlite"
    busy_hint = ("another process holds its write lock (a long transaction, or a stale "
                 "lock on a network filesystem, where SQLite must not be used)")

    def engine_arguments(self, url: URL) -> dict[str, Any]:
        folder = self.database_folder(url)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        return {}

    def configure_engine(self, engine: Engine) -> None:
        # SQLAlchemy's documented recipe for pysqlite: disable the driver's own
        # BEGIN and emit ours, so that writes take the lock up front (BEGIN
        # IMMEDIATE) and reads stay deferred.  A deferred transaction that reads and
        # then writes can fail with SQLITE_BUSY at once in WAL mode, ignoring the
        # busy timeout.
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)

    def prepare_connection(self, dbapi_connection) -> None:
        _sqlite_on_connect(dbapi_connection, None)

    def insert(self, table):
        from sqlalchemy.dialects.sqlite import insert

        return insert(table)

    def json_array_rows(self, source, name: str) -> FromClause:
        return func.json_each(source).table_valued("value", name=name)

    def json_object_rows(self, source, name: str) -> FromClause:
        return func.json_each(source).table_valued("key", "value", name=name)

    def nested_array_join(self, outer: FromClause, inner: FromClause):
        # SQLite lets a table-valued function read a column of a table to its left.
        return outer.join(inner, true())

    def json_string_list(self, column) -> ColumnElement:
        return func.json_group_array(column)

    def decode_json_list(self, value) -> list[str]:
        return json.loads(value) if value else []

    def is_lock_error(self, error: BaseException) -> bool:
        original = error.orig if isinstance(error, DBAPIError) else error
        message = str(original).lower()
        return "database is locked" in message or "database is busy" in message or (
            "database table is locked" in message
        )

    def checkpoint_sql(self) -> str | None:
        return "PRAGMA wal_checkpoint(TRUNCATE)"

    @contextmanager
    def migration_session(self, connection) -> Iterator[None]:
        # Batch mode rebuilds a table by copy, DROP and rename; with foreign keys
        # on, that DROP would cascade-delete every row referring to the table.  The
        # pragma is a no-op inside a transaction, hence set here, on the driver
        # connection, before BEGIN and after COMMIT.
        driver = connection.connection.driver_connection
        driver.execute("PRAGMA foreign_keys = OFF")
        try:
            yield
        finally:
            driver.execute("PRAGMA foreign_keys = ON")

    def check_migrated(self, connection) -> None:
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(
                f"the migration left {len(broken)} rows with dangling foreign keys, "
                f"first {tuple(broken[0])}; it was rolled back"
            )

    def database_file(self, url: URL) -> Path | None:
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(os.path.abspath(database))


def _sqlite_on_connect(dbapi_connection, connection_record) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # The timeout first: switching to WAL may have to wait for other openers.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        # WAL persists in the file; only switch when needed (it takes a lock).
        (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
        if mode.lower() not in ("wal", "memory"):
            cursor.execute("PRAGMA journal_mode = WAL")
        # Consistent always; a power loss may only roll back the last commits.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute(f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}")
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    finally:
        cursor.close()


def _sqlite_on_begin(connection) -> None:
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


#: SQLSTATEs of PostgreSQL errors that a rerun of the transaction resolves:
#: serialization failure and deadlock (the server rolled one transaction back).
PG_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
#: Key of the transaction-level advisory lock that serializes schema migrations
#: ("chunkmem" in ASCII: unlikely to collide with an application's own keys).
PG_MIGRATION_LOCK_KEY = 0x6368756E6B6D656D
# PostgreSQL drivers the catalog runs on: the URL's driver name -> the module needed.
_PG_DRIVERS = {"postgresql": "psycopg", "postgresql+psycopg": "psycopg"}


class PostgreSQLBackend(Backend):
    """PostgreSQL through ``psycopg`` 3 (``pip install chunk-memo[postgres]``).

    Writes run at READ COMMITTED: every conditional upsert (the lease claims above
    all) locks its rows and judges them on their newest committed version, and
    serialization failures and deadlocks are retried.  Reads run at REPEATABLE READ,
    READ ONLY: each is one consistent snapshot, as on SQLite, and never conflicts.
    """

    name = "postgresql"
    upgrades_on_open = False
    serializes_writes = False
    busy_hint = ("other transactions kept conflicting with this one (serialization "
                 "failures or deadlocks)")

    def engine_url(self, url: URL) -> URL:
        module = _PG_DRIVERS.get(url.drivername)
        if module is None:
            raise ValueError(
                f"the catalog talks to PostgreSQL through psycopg 3 only, not through "
                f"{url.drivername!r}; use a URL that starts with postgresql+psycopg://"
            )
        if importlib.util.find_spec(module) is None:
            raise ModuleNotFoundError(
                "a PostgreSQL catalog needs the psycopg driver: "
                "pip install 'chunk-memo[postgres]' (or 'psycopg[binary]')", name=module)
        return url.set(drivername="postgresql+psycopg")

    def engine_arguments(self, url: URL) -> dict[str, Any]:
        # The isolation level of writes, whatever the server's default; reads set
        # theirs per transaction (_postgresql_on_begin).  pre_ping: a pooled
        # connection may have been closed by a server restart or an idle timeout.
        return {"isolation_level": "READ COMMITTED", "pool_pre_ping": True}

    def configure_engine(self, engine: Engine) -> None:
        event.listen(engine, "begin", _postgresql_on_begin)

    def insert(self, table):
        from sqlalchemy.dialects.postgresql import insert

        return insert(table)

    def json_array_rows(self, source, name: str) -> FromClause:
        # A bound parameter arrives as text; the cast parses it once per statement.
        return func.jsonb_array_elements_text(_jsonb(source)).table_valued(
            "value", name=name)

    def json_object_rows(self, source, name: str) -> FromClause:
        return func.jsonb_each_text(_jsonb(source)).table_valued("key", "value", name=name)

    def nested_array_join(self, outer: FromClause, inner: FromClause):
        # A function in FROM may read the columns of the items to its left
        # (implicitly LATERAL).
        return outer.join(inner, true())

    def json_string_list(self, column) -> ColumnElement:
        return func.json_agg(column)

    def decode_json_list(self, value) -> list[str]:
        # psycopg decodes json results itself; a NULL aggregate is no rows.
        if value is None:
            return []
        return json.loads(value) if isinstance(value, (str, bytes)) else value

    def native_rows(self, rows: list[tuple]) -> list[tuple]:
        # psycopg 3 returns bytea as bytes already.
        return rows

    def is_lock_error(self, error: BaseException) -> bool:
        original = error.orig if isinstance(error, DBAPIError) else error
        return getattr(original, "sqlstate", None) in PG_RETRYABLE_SQLSTATES

    def lock_schema(self, connection) -> None:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                           {"key": PG_MIGRATION_LOCK_KEY})


def _jsonb(source):
    from sqlalchemy.dialects.postgresql import JSONB

    return cast(source, JSONB)


def _postgresql_on_begin(connection) -> None:
    if connection.get_execution_options().get(READ_OPTION, False):
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


_BACKENDS: dict[str, Backend] = {"sqlite": SQLiteBackend(), "postgresql": PostgreSQLBackend()}


def backend_for(url_or_name: str | URL) -> Backend:
    """The :class:`Backend` of a database URL or dialect name.

    Raises
    ------
    ValueError
        The catalog does not support that database (yet).
    """
    if isinstance(url_or_name, URL) or "://" in str(url_or_name):
        name = make_url(url_or_name).get_backend_name()
    else:
        name = str(url_or_name)
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"the catalog does not support the {name!r} database; "
            f"supported: {', '.join(sorted(_BACKENDS))}"
        ) from None


def json_string_array(keys: Iterable[str], what: str = "chunk hashes") -> str:
    """Encode strings as a JSON array, fast for the common case of plain hashes.

    ``json.dumps`` takes 0.3 s for 10^6 hashes; joining takes 0.03 s and is exact
    whenever no key needs escaping, which one regular-expression pass checks.

    Raises
    ------
    TypeError
        A key is not a str (the message shows it).
    """
    if not isinstance(keys, (list, tuple)):
        keys = list(keys)
    try:
        joined = '","'.join(keys)
    except TypeError:
        bad = next(key for key in keys if not isinstance(key, str))
        raise TypeError(f"{what} must be str, got {bad!r} ({type(bad).__name__})") from None
    if _NEEDS_JSON_ESCAPE.search(joined) is None:
        return f'["{joined}"]' if keys else "[]"
    return json.dumps(list(keys))
