"""SM2 signature of an export manifest under `crypto.suite = "sm"` (issue 19).

`sign(ctx, body)` runs before the Ed25519 signature is added: it adds `sm2_public_key` (PEM)
and `sm2_signature` (hex DER) over the canonical JSON of the body as it is then (without
`sm2_signature`), so the Ed25519 `signature` covers both. To verify: drop `signature` and
`sm2_signature`, serialise canonically (sorted keys, no spaces, UTF-8), check with
`openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:1234567812345678` (docs/security.md).
"""

from __future__ import annotations

from typing import Any

from agent.core import sm2sig
from agent.ledger import custody
from agent.station import sm2key
from agent.station.context import Context


def sign(ctx: Context, body: dict[str, Any]) -> None:
    if ctx.cfg.crypto.suite != "sm":
        return
    sk, pk = sm2key.load_or_create(ctx.cfg.keys_dir)
    body["sm2_public_key"] = sm2sig.public_pem(pk)
    message = custody.canonical(body).encode("utf-8")
    body["sm2_signature"] = sm2sig.sign(sk, pk, message).hex()
