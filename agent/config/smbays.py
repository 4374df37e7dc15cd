"""How many USB 2.0 dock bays one station sustains under `crypto.suite = "sm"` (issue 19).

SM4-GCM is far slower than AES-256-GCM (no AES-NI-like instructions on x86): each recording's
copy is sealed on one core (the writer thread of its ingest), so one core's SM4-GCM rate divided
by a USB 2.0 bay's read rate is the number of recorders that can be ingested at once without
the cipher becoming the bottleneck. The rate is a measured constant (docs/security.md,
`bench/ingest.py` measures it again on the station's hardware), never a benchmark at check time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config.loader import AgentConfig

# SM4-GCM MB/s (10^6 B/s) on one core: `cryptography` 48 (OpenSSL 3.x), the 2-core x86-64 build
# VM, best of three 1 s runs of 1 MiB chunks, as `bench/ingest.py` measures and prints it.
# The reference machine measured about 110 MB/s (3 bays): see docs/security.md.
SM4_GCM_MB_PER_S = 87.0
USB2_BAY_MB_PER_S = 35.0  # what a body-worn recorder's USB 2.0 mass storage delivers


def sm_bays(sm4_mb_per_s: float = SM4_GCM_MB_PER_S) -> int:
    """Bays one station can ingest at once at full USB 2.0 speed with SM4 (at least 1)."""
    return max(1, int(sm4_mb_per_s // USB2_BAY_MB_PER_S))


def suite_warnings(cfg: AgentConfig) -> list[str]:
    """check-config warning: more parallel ingests than SM4 sustains under suite = "sm"."""
    if cfg.crypto.suite != "sm" or cfg.crypto.encrypt == "off":
        return []
    bays = sm_bays()
    if cfg.ingest.max_parallel <= bays:
        return []
    return [
        f"ingest.max_parallel = {cfg.ingest.max_parallel} exceeds the {bays} USB 2.0 bay(s) "
        f'one station sustains with crypto.suite = "sm" (SM4-GCM ≈ {SM4_GCM_MB_PER_S:.0f} MB/s '
        f"per core, {USB2_BAY_MB_PER_S:.0f} MB/s per bay): ingest will run slower than the "
        "recorders can deliver; lower ingest.max_parallel or add a station (docs/security.md)"
    ]
