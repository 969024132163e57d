"""Errors raised by the catalog."""


class CatalogError(Exception):
    """Base class of every error the catalog raises on purpose."""


class CatalogVersionError(CatalogError):
    """The catalog's schema revision does not fit this version of chunk-memo.

    Either it is unknown (a newer chunk-memo wrote it; opening it with this one could
    damage it), or it is older and on a shared server, which is upgraded only by an
    explicit step: ``python -m chunk_memo.catalog.migrate URL``.
    """


class CacheNotFoundError(CatalogError, LookupError):
    """No cache with the given hash is registered under this catalog's root."""


class CatalogBusyError(CatalogError):
    """The catalog stayed locked by other processes for longer than the retry budget."""
