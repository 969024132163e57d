"""Errors raised by the catalog."""


class CatalogError(Exception):
    """Base class of every error the catalog raises on purpose."""


class CatalogVersionError(CatalogError):
    """The catalog's schema revision is unknown to this version of chunk-memo.

    It was written by a newer chunk-memo; opening it with this one could damage it.
    """


class CacheNotFoundError(CatalogError, LookupError):
    """No cache with the given hash is registered under this catalog's root."""


class CatalogBusyError(CatalogError):
    """The catalog stayed locked by other processes for longer than the retry budget."""
