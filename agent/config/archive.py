"""The `[archive]` config section: where evidence goes off the spool, and how.

Kept out of agent/config.py because the S3 knobs (addressing, checksums, parts, bandwidth
windows, Object Lock retention per category) are many; the section is still `archive` and
follows the same rules: `extra="forbid"`, a description on every field, sane defaults.
S3 access keys are never here (boto3's credential chain or the credentials file).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from agent.config.base import Section

MIB = 1 << 20
_S3_URL = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9_.\-/]*)?$")
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


class RetentionRule(Section):
    mode: Literal["COMPLIANCE", "GOVERNANCE"] = Field(
        "COMPLIANCE",
        description="Object Lock mode: COMPLIANCE (nobody, not even the bucket owner, can "
        "shorten or delete) or GOVERNANCE (users with s3:BypassGovernanceRetention can).",
    )
    days: int = Field(
        186,
        ge=1,
        le=36500,
        description="Retention from upload, in days (default 186: at least six calendar "
        "months, the MPS minimum for on-site enforcement footage).",
    )


class RetentionConfig(RetentionRule):
    legal_hold_for_cases: bool = Field(
        True,
        description="Put a legal hold on recordings tagged with a case number (at upload, or "
        "later when a tag adds the case); the agent never removes a legal hold.",
    )
    categories: dict[str, RetentionRule] = Field(
        default_factory=dict,
        description="Per metadata category (e.g. evidence = { days = 3650 }); a category "
        "not listed gets the default mode/days above.",
    )


class BandwidthWindow(Section):
    start: str = Field(description="Local start time HH:MM (station.timezone).")
    end: str = Field(description="Local end time HH:MM; before start means across midnight.")
    days: list[int] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5, 6, 7],
        description="ISO weekdays the window applies on (1 = Monday ... 7 = Sunday).",
    )
    bytes_per_s: int | None = Field(
        description="Upload cap inside the window in bytes/s; 0 pauses uploads; "
        "unset = unlimited (e.g. full speed at night)."
    )

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError(f"{v!r} is not a time of day HH:MM")
        return v

    @field_validator("days")
    @classmethod
    def _weekdays(cls, v: list[int]) -> list[int]:
        if not v or any(d < 1 or d > 7 for d in v):
            raise ValueError("weekdays are 1 (Monday) ... 7 (Sunday)")
        return v

    @field_validator("bytes_per_s")
    @classmethod
    def _rate(cls, v: int | None) -> int | None:
        if v is not None and v < 0:
            raise ValueError("must be >= 0 (0 pauses uploads)")
        return v


class ArchiveConfig(Section):
    url: str | None = Field(
        None, description="file:///path or s3://bucket/prefix (default <data_dir>/archive)."
    )
    endpoint_url: str | None = Field(
        None,
        description="S3 endpoint for non-AWS stores (SeaweedFS, MinIO, Ceph), e.g. "
        "https://s3.example.org:8333; unset = AWS.",
    )
    off_station: bool = Field(
        False, description="A file:// archive counts as off-station (e.g. a NAS mount)."
    )
    region: str | None = Field(
        None, description="S3 region (unset: the boto3 default, else us-east-1)."
    )
    profile: str | None = Field(
        None, description="Named profile in ~/.aws/credentials to use (unset: default chain)."
    )
    addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto",
        description="Bucket in the path (most self-hosted stores) or in the host name (AWS).",
    )
    checksum_mode: Literal["when_supported", "when_required"] = Field(
        "when_supported",
        description="boto3 request/response checksum calculation. The agent always sends its "
        "own SHA-256 per part; when_required stops boto3 adding CRC checksums stores may "
        "reject.",
    )
    ca_bundle: Path | None = Field(
        None, description="CA bundle file for a store with a private certificate."
    )
    verify_tls: bool = Field(True, description="Verify the store's TLS certificate.")
    encryption: Literal["server", "client"] = Field(
        "server",
        description='How S3 objects are kept confidential: "server" uploads the plaintext '
        "and asks for the store's server-side encryption (SSE-S3, AES256) where it offers it "
        '(a store that refuses gets the plaintext, with one warning); "client" uploads the '
        "station's encrypted envelope, wrapped for the station key and the agency's recovery "
        "key (crypto.recovery_public_key required). docs/security.md.",
    )
    object_lock: bool = Field(
        True,
        description="Require a bucket with Object Lock and set retention at upload. false "
        "only for stores without Object Lock (the archive is then NOT write-once).",
    )
    retention: RetentionConfig = Field(
        default_factory=RetentionConfig,  # type: ignore[arg-type]
        description="Object Lock retention (mode, days, per category, legal hold).",
    )
    part_size_bytes: int = Field(
        8 * MIB,
        ge=5 * MIB,
        le=5 * 1024 * MIB,
        description="Multipart part size (S3 minimum 5 MiB); raised automatically so no "
        "object needs more than 10000 parts.",
    )
    multipart_threshold_bytes: int = Field(
        8 * MIB, ge=5 * MIB, description="Files at least this large are uploaded in parts."
    )
    parallel_parts: int = Field(4, ge=1, le=32, description="Parts of one recording in flight.")
    parallel_uploads: int = Field(
        2,
        ge=1,
        le=8,
        description="Recordings uploaded at once (earliest deadlines first); keeps the link "
        "busy between one recording's last part and the next one's first.",
    )
    bandwidth_bytes_per_s: int | None = Field(
        None,
        ge=0,
        description="Upload cap outside the windows below, bytes/s (unset = unlimited, "
        "0 = paused).",
    )
    bandwidth_windows: list[BandwidthWindow] = Field(
        default_factory=list,
        description="Time windows with their own cap, first match wins, e.g. "
        '{ start = "08:00", end = "18:00", days = [1,2,3,4,5], bytes_per_s = 2500000 }.',
    )
    max_attempts: int = Field(
        5, ge=1, le=20, description="boto3 attempts per request (standard retry mode)."
    )
    timeout_seconds: float = Field(
        60.0, gt=0, description="Connect/read timeout of one request to the store."
    )
    retry_min_seconds: float = Field(
        5.0, gt=0, description="First wait after the store failed; doubles per failure."
    )
    retry_max_seconds: float = Field(
        300.0, gt=0, description="Longest wait between attempts while the store fails."
    )
    abandoned_upload_hours: float = Field(
        24.0,
        gt=0,
        description="Incomplete multipart uploads of this station's recordings that the "
        "ledger does not track are aborted once this old.",
    )
    audit_sample_rate: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Fraction of newly archived objects read back in full and re-hashed.",
    )
    spool_keep_days: float = Field(
        7.0,
        ge=0,
        description="Keep a spool copy this long after it was archived and verified, for "
        "fast local retrieval; then it is removed, oldest first.",
    )
    spool_min_free_bytes: int = Field(
        4 << 30,
        ge=0,
        description="Below this much free spool space, archived copies are removed before "
        "spool_keep_days (oldest first); never a copy that is not verifiably archived.",
    )
    housekeep_seconds: float = Field(300.0, gt=0, description="How often spool housekeeping runs.")
    release_retention_margin_days: int = Field(
        30,
        ge=0,
        le=36500,
        description="Before the wipe gate erases a source, the store must report Object Lock "
        "retention for the archived object that holds at least this many more days.",
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str | None) -> str | None:
        if v is not None and not (v.startswith("file:///") or _S3_URL.match(v)):
            raise ValueError(
                "must be file:///absolute/path or s3://bucket[/prefix] (bucket: 3-63 of "
                "a-z 0-9 . -; prefix: A-Z a-z 0-9 _ . - /)"
            )
        return v

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/]+", v):
            raise ValueError("must look like https://host:port (or http:// for a test store)")
        return v

    @property
    def is_s3(self) -> bool:
        return bool(self.url and self.url.startswith("s3://"))
