"""Closed interview segments are kept encrypted (issue 19): sealed once, while they are hashed.

With a station key (crypto.encrypt), closing a segment copies the file ffmpeg finished into
an envelope beside it (`.<name>.sealed`, hidden from the run's segment list) in one pass that
also takes the SHA-256 chained in custody (agent.core.copier with `seal`), makes it durable and
reads it back through the envelope. The envelope, not the plaintext, is then moved into the
camera's volume; the plaintext is removed only after that sealed copy verified, and after the
move (agent.interview.segments.finish). Ingest reads the sealed segment as its plaintext
(`source_keys`), so the spool copy and the recording's hash are those of the footage. Without a
station key the segment stays plaintext, as before.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from agent.core import sealedio
from agent.core.copier import copy_file
from agent.core.errors import AgentError
from agent.core.safefs import fsync_dir
from agent.station.context import Context

logger = logging.getLogger(__name__)


def staged(work: Path) -> Path:
    """Where the sealed copy of `work` is made (a hidden name recovery never lists)."""
    return work.with_name(f".{work.name}.sealed")


def seal(ctx: Context, work: Path) -> str | None:
    """Seal `work` into `staged(work)`; the plaintext SHA-256, or None without a station key.
    The sealed copy was read back and matched before this returns."""
    if ctx.seal is None:
        return None
    st = work.stat()
    result = copy_file(work.parent, work.name.encode(), st.st_size, st.st_mtime_ns,
                       staged(work), work.parent, seal=ctx.seal, verify=True)  # fmt: skip
    return result.sha256


def sealed_source(ctx: Context, work: Path, sha256: str) -> Path:
    """What to move into the volume: the verified sealed copy of `work` when there is one (made
    now if a crash came between the close and the seal), else `work` itself."""
    out = staged(work)
    if ctx.seal is None and not out.exists():
        return work
    if not out.exists():
        try:
            if seal(ctx, work) != sha256:
                logger.error("segment %s no longer matches its chained SHA-256 %s: it is moved "
                             "as it is, for verify to report", work, sha256)  # fmt: skip
                staged(work).unlink(missing_ok=True)
                return work
        except (AgentError, OSError) as exc:
            logger.error("segment %s could not be sealed (%s): moved in plaintext", work, exc)
            return work
    return out


def drop_plaintext(ctx: Context, work: Path, dest: Path, sha256: str) -> None:
    """Remove the plaintext `work` once `dest`, its sealed copy in the volume, opens to the
    chained hash (after a crash between the move and the removal, too)."""
    if not work.exists() or not sealedio.is_sealed(dest):
        return
    try:
        ok = sealedio.hash_plain(dest, ctx.keyring)[0] == sha256
    except (AgentError, OSError) as exc:
        logger.error("sealed segment %s does not open (%s): plaintext %s kept", dest, exc, work)
        return
    if not ok:
        logger.error("sealed segment %s does not match %s: plaintext %s kept", dest, sha256, work)
        return
    os.unlink(work)
    fsync_dir(work.parent)
