"""Revisions of the catalog schema, oldest first: ``0001``, ``0002``, ..."""
