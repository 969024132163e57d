"""Fixtures of the catalog conformance tests.

``CatalogTests`` (test_catalog.py) runs against any database a subclass names with a
``catalog_url`` fixture: SQLite, a fresh file per test, or PostgreSQL, a fresh
database per test on the session's throwaway server (``postgres_url``, in the
top-level conftest).
"""

import itertools
import os
import sys

import pytest
from sqlalchemy.engine import make_url

from chunk_memo.catalog import Catalog, dispose_engine

# The 'spawn' children of the multi-process tests import the helper modules by name.
sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture
def sqlite_url(tmp_path):
    """A fresh SQLite catalog file outside the roots (so roots are stored by path)."""
    url = f"sqlite:///{tmp_path / 'db' / 'catalog.sqlite'}"
    yield url
    dispose_engine(url)


_database_numbers = itertools.count()


@pytest.fixture
def postgres_catalog_url(postgres_url):
    """A fresh, empty database on the test server (so schema tests start from nothing)."""
    import psycopg

    server = make_url(postgres_url)
    name = f"catalog_{os.getpid()}_{next(_database_numbers)}"
    admin_uri = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_uri, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = server.set(database=name).render_as_string(hide_password=False)
    yield url
    dispose_engine(url)
    with psycopg.connect(admin_uri, autocommit=True) as admin:
        # FORCE: connections a test's child processes may have left behind.
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def other_root(tmp_path):
    path = tmp_path / "other-root"
    path.mkdir()
    return path


@pytest.fixture
def catalog(root, catalog_url):
    """The catalog of ``root`` in the database of the subclass's ``catalog_url``."""
    return Catalog(root, catalog_url)
