"""Which archive store `archive.url` names: the one place that knows both implementations.

Kept apart from agent.archive.store (the interface) so neither store imports the other's module
through the interface they share.
"""

from __future__ import annotations

from agent.archive.local import LocalArchive
from agent.archive.store import Store
from agent.ledger import paths as stationpaths
from agent.station.context import Context


def open_store(ctx: Context) -> Store:
    """The store for `archive.url`: `file://` is local, anything else is S3."""
    url = ctx.cfg.archive_url
    if url.startswith("file://"):
        store = LocalArchive(url, ctx.cfg.archive.off_station)
        store.keys = ctx.keyring
        # A local archive on a second disk that is not mounted must not look empty.
        stationpaths.check_root(ctx.cfg, ctx.ledger.connect(), "archive", store.root)
        return store
    # boto3 is heavy: the S3 store is imported only by stations that use one.
    from agent.archive.s3.store import S3Archive

    return S3Archive(ctx)
