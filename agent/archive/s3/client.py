"""The boto3 S3 client of the archive: credentials, endpoint quirks, and errors in plain words.

boto3 is imported here, lazily, so a station with a local archive never loads it. Keys come
from the credentials file (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional
`AWS_SESSION_TOKEN`, KEY=VALUE, from `credentials.file` or `$CREDENTIALS_DIRECTORY/evidence-agent`)
or else from boto3's own chain (environment, ~/.aws, instance role); never from the TOML.
`translate` turns botocore exceptions into the agent's ArchiveError classes, each naming the
endpoint, bucket or key and what to do.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from agent.config.loader import AgentConfig
from agent.core.errors import (
    ArchiveAuthError,
    ArchiveBucketError,
    ArchiveClockError,
    ArchiveError,
    ArchiveUnavailableError,
    ChecksumRejectedError,
    CredentialsError,
)
from agent.station.credentials import Credentials

logger = logging.getLogger(__name__)

KEY_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

_AUTH = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "AccessDenied",
    "403",
}
_BUSY = {
    "SlowDown",
    "ServiceUnavailable",
    "503",
    "500",
    "502",
    "504",
    "InternalError",
    "RequestTimeout",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
}
_CHECKSUM = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum"}


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or "a/b" (no leading/trailing slash)

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)


def parse_url(url: str) -> S3Location:
    m = re.match(r"^s3://([^/]+)/?(.*)$", url)
    if not m:
        raise ValueError(f"archive.url {url!r} is not s3://bucket[/prefix]")
    prefix = "/".join(p for p in m.group(2).split("/") if p)
    return S3Location(m.group(1), prefix)


def s3_secrets(cfg: AgentConfig) -> dict[str, str]:
    """AWS_* keys from the credentials (agent.station.credentials), or {} to let boto3's chain decide."""
    creds = Credentials(cfg.credentials.file)
    found = {k: v for k in KEY_NAMES if (v := creds.get(k))}
    if bool(found.get("AWS_ACCESS_KEY_ID")) != bool(found.get("AWS_SECRET_ACCESS_KEY")):
        raise CredentialsError(
            f"credentials ({', '.join(creds.sources())}) hold only one of "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; give both"
        )
    return found


def make_client(cfg: AgentConfig, max_pool: int | None = None) -> Any:
    """A boto3 S3 client for `cfg.archive` (endpoint, region, addressing, checksums)."""
    import boto3
    from botocore.config import Config

    a = cfg.archive
    secrets = s3_secrets(cfg)
    session = boto3.session.Session(
        profile_name=a.profile,
        aws_access_key_id=secrets.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=secrets.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=secrets.get("AWS_SESSION_TOKEN"),
    )
    config = Config(
        region_name=a.region or session.region_name or "us-east-1",
        signature_version="s3v4",
        s3={"addressing_style": a.addressing_style},
        retries={"mode": "standard", "max_attempts": a.max_attempts},
        connect_timeout=a.timeout_seconds,
        read_timeout=a.timeout_seconds,
        max_pool_connections=max_pool or a.parallel_parts + 4,
        request_checksum_calculation=a.checksum_mode,
        response_checksum_validation=a.checksum_mode,
        tcp_keepalive=True,
    )
    verify: bool | str = str(a.ca_bundle) if a.ca_bundle else a.verify_tls
    client = session.client("s3", endpoint_url=a.endpoint_url, config=config, verify=verify)
    _sign_with_known_payload_hash(client)
    return client


_KNOWN_PAYLOAD = "evidence_agent_payload_sha256"
_SIGNER = "s3v4-evidence-agent"


def _sign_with_known_payload_hash(client: Any) -> None:
    """Sign uploads with the body's SHA-256 we already hold instead of hashing it again.

    Every PutObject/UploadPart carries x-amz-checksum-sha256, the SHA-256 of exactly its
    body (the store rejects the request otherwise). SigV4's payload hash is that same value in
    hex; over plain http botocore would compute it a second time, a full extra pass over
    every byte on a station's small CPU. The signature stays a signed-payload SigV4.
    """
    import base64

    from botocore import auth

    class KnownPayloadS3SigV4Auth(auth.S3SigV4Auth):
        def payload(self, request: Any) -> str:
            known = request.context.get(_KNOWN_PAYLOAD)
            return str(known) if known else str(super().payload(request))

    auth.AUTH_TYPE_MAPS.setdefault(_SIGNER, KnownPayloadS3SigV4Auth)

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        checksum = params.get("headers", {}).get("x-amz-checksum-sha256")
        if checksum:
            context[_KNOWN_PAYLOAD] = base64.b64decode(checksum).hex()

    def choose(signature_version: str, context: dict[str, Any], **_: Any) -> str | None:
        if context.get(_KNOWN_PAYLOAD) and signature_version in ("v4", "s3v4"):
            return _SIGNER
        return None  # anything else (sigv4a, S3 Express, unsigned): botocore decides

    for op in ("PutObject", "UploadPart"):
        client.meta.events.register(f"before-call.s3.{op}", remember)
        client.meta.events.register_first(f"choose-signer.s3.{op}", choose)


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return str(status) if status else None
    return None


def translate(exc: BaseException, cfg: AgentConfig, what: str) -> ArchiveError:
    """A botocore/OS exception from doing `what` → the ArchiveError a user can act on."""
    if isinstance(exc, ArchiveError):
        return exc
    from botocore import exceptions as bce

    where = cfg.archive.endpoint_url or "AWS S3"
    url = cfg.archive.url
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
        return ArchiveAuthError(
            f"{what}: no S3 credentials found for {where}. Put AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY in the credentials file (credentials.file or "
            "$CREDENTIALS_DIRECTORY/evidence-agent), or configure the boto3 chain; "
            "keys never go in the TOML"
        )
    if isinstance(exc, bce.EndpointConnectionError | bce.ConnectionError | bce.HTTPClientError):
        return ArchiveUnavailableError(
            f"{what}: cannot reach the store at {where}: {exc}. Uploads wait and retry; "
            "check archive.endpoint_url and the network"
        )
    code = error_code(exc) or type(exc).__name__
    msg = str(exc)
    if code == "RequestTimeTooSkewed":
        return ArchiveClockError(
            f"{what}: the store at {where} says the station clock is off by more than it "
            "allows (RequestTimeTooSkewed). Synchronise the clock (chrony/timedatectl)"
        )
    if code in ("NoSuchBucket", "404") and "bucket" in what.lower():
        return ArchiveBucketError(
            f"{what}: bucket of {url} does not exist at {where}. Create it with Object Lock "
            "(aws s3api create-bucket --object-lock-enabled-for-bucket ...) or fix archive.url"
        )
    if code == "NoSuchBucket":
        return ArchiveBucketError(f"{what}: bucket of {url} does not exist at {where}")
    if code in _AUTH:
        return ArchiveAuthError(
            f"{what}: the store at {where} refused the credentials or permission ({code}). "
            "Check the access key in the credentials file / boto3 chain and the bucket policy"
        )
    if code in _CHECKSUM:
        return ChecksumRejectedError(f"{what}: the store rejected the data's checksum ({code})")
    if code in _BUSY:
        return ArchiveUnavailableError(
            f"{what}: the store at {where} is busy or failing ({code}); backing off"
        )
    err = ArchiveError(f"{what}: the store at {where} answered {code}: {msg}")
    err.store_wide = False
    return err
