"""One SQLAlchemy engine per (URL, process), and short retried transactions.

Engines are kept in a registry keyed by ``(url, os.getpid())``.  A process created by
``fork()`` inherits its parent's engines and their open connections, which it must
neither use nor close (SQLite's "How To Corrupt" guide, section 2.6; a PostgreSQL
connection's socket is shared with the parent's session likewise): the
after-fork hook drops the inherited engines with ``dispose(close=False)`` and keeps
the inherited driver connections referenced for the child's lifetime, so that not
even the garbage collector closes them.  The child's first query opens its own
engine.
"""

from __future__ import annotations

import os
import random
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, ContextManager, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from .dialects import READ_OPTION, WRITE_OPTION, backend_for
from .errors import CatalogBusyError

T = TypeVar("T")

#: File name of the default catalog inside a root.
CATALOG_FILE_NAME = "catalog.sqlite"
#: Total time a transaction keeps retrying "database is locked" before giving up.
#: The busy timeout already waits 30 s per attempt; this is the last resort.
LOCK_RETRY_SECONDS = 600.0
_FIRST_RETRY_DELAY = 0.005
_MAX_RETRY_DELAY = 1.0

_engines: dict[tuple[str, int], Engine] = {}
_engines_lock = threading.Lock()
# Driver connections opened by this process and not yet closed, by id().
_open_connections: dict[int, object] = {}
# Connections inherited across fork(): referenced forever, never used, never closed.
_inherited_connections: list[object] = []
# Idle driver connections for one-statement reads, per (SQLite URL, pid): see
# read_statement.  At most this many are kept per URL; more are closed after use.
_read_connections: dict[tuple[str, int], list | None] = {}
MAX_IDLE_READ_CONNECTIONS = 8
# SQLite files as this process first saw them, per (url, pid): (path, (dev, inode)).
_database_files: dict[tuple[str, int], tuple[str, tuple | None]] = {}
# How many times each URL's engine was disposed: objects built on an engine (open
# catalogs) compare it to know they must be rebuilt.
_disposals: dict[str, int] = {}


def default_url(root: str | os.PathLike) -> str:
    """The URL of a root's own SQLite catalog, ``sqlite:///<root>/catalog.sqlite``.

    Examples
    --------
    >>> default_url("/data/sweep")
    'sqlite:////data/sweep/catalog.sqlite'
    """
    return f"sqlite:///{Path(os.path.abspath(os.fspath(root))) / CATALOG_FILE_NAME}"


def get_engine(url: str | URL) -> Engine:
    """This process's engine for ``url``, created on first use.

    Parameters
    ----------
    url : str or sqlalchemy.engine.URL
        A SQLAlchemy database URL.

    Returns
    -------
    sqlalchemy.Engine
        Configured with the backend's pragmas and transaction hooks; shared by every
        catalog of this process that uses the same URL.
    """
    key = (url_string(url), os.getpid())
    engine = _engines.get(key)
    if engine is not None:
        return engine
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _create_engine(key[0])
            _engines[key] = engine
    return engine


def remember_database_file(url: str) -> None:
    """Note which file a SQLite ``url`` names now (see :func:`check_database_file`)."""
    path = backend_for(url).database_file(make_url(url))
    if path is not None:
        _database_files[(url, os.getpid())] = (str(path), _file_identity(str(path)))


def check_database_file(url: str) -> None:
    """Dispose this process's engine for ``url`` if its SQLite file was deleted or replaced.

    Pooled and idle connections keep a deleted file open: without this, a process
    that removed a root (``rm -rf`` in a notebook) and used it again would write its
    catalog into the deleted file, lost when the process ends, and never create the
    new one.
    """
    known = _database_files.get((url, os.getpid()))
    if known is not None and _file_identity(known[0]) != known[1]:
        dispose_engine(url)


def _file_identity(path: str) -> tuple | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def disposals(url: str) -> int:
    """How many times :func:`dispose_engine` was called for ``url`` in this process."""
    return _disposals.get(url, 0)


def url_string(url: str | URL) -> str:
    """``url`` as a string, password included (``str(URL)`` would mask it)."""
    return url if isinstance(url, str) else url.render_as_string(hide_password=False)


def display_url(url: str | URL) -> str:
    """``url`` for messages: the password masked."""
    return make_url(url).render_as_string(hide_password=True)


def _create_engine(url: str) -> Engine:
    backend = backend_for(url)
    parsed = backend.engine_url(make_url(url))
    engine = create_engine(parsed, **backend.engine_arguments(parsed))
    backend.configure_engine(engine)
    event.listen(engine, "connect", _remember_connection)
    event.listen(engine, "close", _forget_connection)
    event.listen(engine, "close_detached", _forget_detached_connection)
    return engine


def _remember_connection(dbapi_connection, connection_record) -> None:
    _open_connections[id(dbapi_connection)] = dbapi_connection


def _forget_connection(dbapi_connection, connection_record) -> None:
    _open_connections.pop(id(dbapi_connection), None)


def _forget_detached_connection(dbapi_connection) -> None:
    _open_connections.pop(id(dbapi_connection), None)


def dispose_engine(url: str | URL) -> None:
    """Close this process's pooled connections to ``url`` and forget its engine.

    For tests and for tools that delete a catalog file; catalogs opened afterwards
    get a fresh engine.
    """
    key = (url_string(url), os.getpid())
    with _engines_lock:
        engine = _engines.pop(key, None)
        idle = _read_connections.pop(key, None) or []
        _database_files.pop(key, None)
        _disposals[key[0]] = _disposals.get(key[0], 0) + 1
    for connection in idle:  # one in use now is closed when it is dropped
        connection.close()
    if engine is not None:
        engine.dispose()


def _after_fork_in_child() -> None:
    global _engines_lock
    _engines_lock = threading.Lock()  # another thread may have held it at fork time
    _inherited_connections.extend(_open_connections.values())
    _open_connections.clear()
    for idle in _read_connections.values():
        _inherited_connections.extend(idle or ())
    _read_connections.clear()
    inherited = list(_engines.values())
    _engines.clear()
    for engine in inherited:
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


def read_statement(url: str, sql: str, parameters, fallback: Callable[[], T]) -> list | T:
    """Rows of one read-only driver statement on ``url``; the hot path of lookups.

    On SQLite the statement runs on an idle driver connection of this process kept
    for such reads, in autocommit mode: one statement is one consistent snapshot, so
    it needs no transaction, and skipping the pool checkout and SQLAlchemy's
    transaction events takes a one-chunk catalog read from ~100 us to ~15 us.
    Elsewhere, and whenever the fast path meets a locked database, ``fallback()``
    answers (a full retried transaction).
    """
    idle = _idle_read_connections(url)
    if idle is None:
        return fallback()
    try:
        connection = idle.pop()
    except IndexError:
        connection = _open_read_connection(url)
    try:
        cursor = connection.execute(sql, parameters)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()
    except connection.OperationalError as error:
        if not backend_for("sqlite").is_lock_error(error):
            raise
        return fallback()
    finally:
        if len(idle) < MAX_IDLE_READ_CONNECTIONS:
            idle.append(connection)
        else:
            connection.close()


def _idle_read_connections(url: str) -> list | None:
    """This process's idle read connections to ``url`` (None: not a SQLite URL)."""
    key = (url, os.getpid())
    idle = _read_connections.get(key, False)
    if idle is False:
        is_sqlite = get_engine(url).dialect.name == "sqlite"  # takes _engines_lock itself
        with _engines_lock:
            idle = _read_connections.setdefault(key, [] if is_sqlite else None)
    return idle


def _open_read_connection(url: str):
    dialect = get_engine(url).dialect
    cargs, cparams = dialect.create_connect_args(make_url(url))
    # Any thread may take it from the idle list; one thread uses it at a time.
    connection = dialect.loaded_dbapi.connect(*cargs, **{**cparams, "check_same_thread": False})
    # Set up as the engine's pooled connections are (pragmas, autocommit).
    backend_for("sqlite").prepare_connection(connection)
    return connection


def run_transaction(engine: Engine, work: Callable[[Connection], T], *, write: bool,
                    around: Callable[[Connection], ContextManager] | None = None) -> T:
    """Run ``work(connection)`` in one transaction, retrying while the database is locked.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        From :func:`get_engine`.
    work : callable
        Receives the connection; must be safe to run again from the start (every
        catalog write is an idempotent upsert or delete).  Keep it short: on SQLite
        a write transaction holds the database's only write lock.
    write : bool
        ``True`` takes the write lock up front (``BEGIN IMMEDIATE`` on SQLite);
        ``False`` begins a deferred, read-only transaction.
    around : callable, optional
        ``around(connection)`` is a context manager entered before the transaction
        begins and left after it ends (connection settings a transaction cannot
        change, such as SQLite's ``foreign_keys``).

    Returns
    -------
    object
        What ``work`` returned.

    Raises
    ------
    CatalogBusyError
        The database stayed locked for :data:`LOCK_RETRY_SECONDS`.
    """
    backend = backend_for(engine.dialect.name)
    deadline = time.monotonic() + LOCK_RETRY_SECONDS
    delay = _FIRST_RETRY_DELAY
    while True:
        try:
            with engine.connect() as connection:
                connection.execution_options(**{WRITE_OPTION if write else READ_OPTION: True})
                with around(connection) if around else nullcontext():
                    with connection.begin():
                        return work(connection)
        except OperationalError as error:
            if not backend.is_lock_error(error):
                raise
            if time.monotonic() + delay > deadline:
                raise CatalogBusyError(
                    f"the catalog {display_url(engine.url)} stayed "
                    f"locked for {LOCK_RETRY_SECONDS:.0f} s; {backend.busy_hint}"
                ) from error
        time.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, _MAX_RETRY_DELAY)
