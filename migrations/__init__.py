"""Alembic environment and revisions of the chunk-memo catalog schema.

Shipped inside the wheel as ``chunk_memo.migrations`` and run programmatically by
:mod:`chunk_memo.catalog.migrate`; there is no ``alembic.ini``.
"""
