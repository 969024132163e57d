"""Fixtures of the catalog conformance tests.

``CatalogTests`` (test_catalog.py) runs against any database a subclass names with a
``catalog_url`` fixture; here SQLite, a fresh file per test.  A PostgreSQL subclass
will give a URL of a fresh database or schema instead.
"""

import os
import sys

import pytest

from chunk_memo.catalog import Catalog, dispose_engine

# The 'spawn' children of the multi-process tests import the helper modules by name.
sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture
def sqlite_url(tmp_path):
    """A fresh SQLite catalog file outside the roots (so roots are stored by path)."""
    url = f"sqlite:///{tmp_path / 'db' / 'catalog.sqlite'}"
    yield url
    dispose_engine(url)


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
