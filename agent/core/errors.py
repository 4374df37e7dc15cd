"""Exception classes of the agent: every error a user can see is one of these.

Each carries a message that names the file, device or config key at fault and what to do,
so the CLI can print it without a traceback.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base class; `str(err)` is the user-facing message."""

    exit_code = 1


class ConfigError(AgentError):
    """The configuration is invalid; `problems` lists (key path, message) pairs."""

    exit_code = 78  # EX_CONFIG from sysexits.h, which systemd and check-config users expect

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        lines = [f"{key}: {msg}" for key, msg in problems]
        super().__init__(f"invalid configuration{where}:\n  " + "\n  ".join(lines))


class CredentialsError(AgentError):
    """A secret is missing or its file is unreadable."""


class LedgerError(AgentError):
    """The ledger database cannot be opened or migrated."""


class MissingLedgerError(AgentError):
    """A command that reads a station's ledger found none in the data dir; nothing is created."""

    exit_code = 66  # EX_NOINPUT


class SpoolFullError(AgentError):
    """The spool would drop below its reserve; ingest stops cleanly instead of filling it."""


class SourceChangedError(AgentError):
    """A source file changed (size or mtime) while it was being copied."""


class SourceStalledError(AgentError):
    """A source read gave nothing for `ingest.stall_seconds`: the recorder hangs."""


class IntegrityError(AgentError):
    """A copy or the custody chain does not match what was recorded."""


class AnchorConflictError(IntegrityError):
    """A write-once archive document (a custody anchor) already exists with other content."""


class UnknownRecordingError(AgentError):
    """An id or SHA-256 prefix names no recording, or more than one."""


class QuarantineError(AgentError):
    """An accept/reject names a recording that is not quarantined (or already decided)."""


class TagError(AgentError):
    """Case metadata was refused: unknown field, bad case number, future capture time,
    unknown officer or recording. The message names the field and what is accepted."""

    exit_code = 65  # EX_DATAERR: the input, not the station, is wrong


class MqttConfigError(AgentError):
    """The MQTT settings cannot work (bad URL, unreadable TLS files); MQTT stays off."""


class CommandError(AgentError):
    """An MQTT command is refused or invalid; the message goes back in the reply."""


class ArchiveError(AgentError):
    """The archive store could not take or confirm a recording.

    `retryable` says whether waiting can help (store down, throttled); `store_wide` says the
    problem is the store's (credentials, bucket, clock) rather than one recording's, so the
    archiver pauses the whole queue instead of skipping to the next recording.
    """

    retryable = True
    store_wide = True


class ArchiveUnavailableError(ArchiveError):
    """The store cannot be reached or is overloaded (connection refused, 503, SlowDown)."""


class ArchiveAuthError(ArchiveError):
    """The store refused the credentials, or none were found."""


class ArchiveBucketError(ArchiveError):
    """The bucket is missing, or lacks Object Lock/versioning when retention is required."""


class ArchiveClockError(ArchiveError):
    """The station clock and the store's differ too much to sign requests or set retention."""


class ChecksumRejectedError(ArchiveError):
    """The store rejected a part or object because its checksum did not match the bytes."""

    store_wide = False


class ArchiveVerifyError(ArchiveError):
    """The stored object does not match (size, checksum, SHA-256 metadata, retention)."""

    store_wide = False


class SpoolIntegrityError(IntegrityError):
    """A spool copy no longer matches the SHA-256 recorded at ingest (bit rot, tampering)."""


class SpoolReadError(ArchiveError):
    """The spool copy could not be read (disk error); the recording waits and retries."""

    store_wide = False


class NotOwnerError(AgentError):
    """A command that writes the ledger directly was run by someone other than the data dir's
    owner; the message gives the `sudo -u <owner> ...` line to run instead."""

    exit_code = 77  # EX_NOPERM, as for every refusal (docs/access.md)


class AlreadyRunningError(AgentError):
    """Another `run` daemon holds the data dir's lock."""

    exit_code = 75  # EX_TEMPFAIL: it may succeed once the other daemon stops


class StationKeyError(AgentError):
    """The station key is missing while signed checkpoints need it, or is not a plain file."""


class EnvelopeError(SpoolIntegrityError):
    """An encrypted copy fails authentication or its envelope is damaged."""


class EnvelopeKeyError(AgentError):
    """No key this station holds opens an encrypted copy, or a key file is unusable."""


class SealedSourceError(IntegrityError):
    """A sealed source (a closed interview segment in its volume) fails authentication: its
    bytes are not what was sealed. An integrity finding, not a read to retry; `chunk` is the
    index of the chunk that failed (None: the envelope header itself)."""

    def __init__(self, message: str, chunk: int | None = None) -> None:
        super().__init__(message)
        self.chunk = chunk
