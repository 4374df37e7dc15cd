"""Checks of the bucket before the first put: Object Lock is on, and the clocks agree.

Retention dates are computed on the station; a station clock far off the store's would set
wrong retain-until dates and sign requests the store refuses, so the put is refused first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from agent.archive.s3.client import error_code
from agent.core import clock
from agent.core.errors import ArchiveBucketError, ArchiveClockError

logger = logging.getLogger(__name__)

MAX_SKEW = timedelta(minutes=15)  # S3's own limit for signed requests


def check_clock(resp: Any, store: str) -> None:
    """Refuse when the store's Date header is more than MAX_SKEW off the station clock."""
    date = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if not date:
        return
    try:
        skew = clock.now() - parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return
    if abs(skew) > MAX_SKEW:
        raise ArchiveClockError(
            f"the station clock is {skew.total_seconds():+.0f} s off the store's ({store}); "
            "retention dates and signed requests would be wrong. Synchronise the clock "
            "(chrony/timedatectl)"
        )
    if abs(skew) > timedelta(minutes=1):
        logger.warning("station clock differs from the store's by %+.0f s", skew.total_seconds())


def require_object_lock(
    client: Any, bucket: str, tr: Callable[[BaseException, str], Exception]
) -> None:
    """The bucket must have Object Lock enabled, or evidence would not be write-once."""
    try:
        conf = client.get_object_lock_configuration(Bucket=bucket)
        enabled = conf["ObjectLockConfiguration"].get("ObjectLockEnabled") == "Enabled"
    except Exception as exc:
        if error_code(exc) != "ObjectLockConfigurationNotFoundError":
            raise tr(exc, f"read Object Lock configuration of bucket {bucket}") from exc
        enabled = False
    if not enabled:
        raise ArchiveBucketError(
            f"bucket {bucket} has no Object Lock, but archive.object_lock requires it: "
            "evidence would not be write-once. Use a bucket created with Object Lock "
            "(--object-lock-enabled-for-bucket), or set archive.object_lock = false "
            "for a store without it"
        )
