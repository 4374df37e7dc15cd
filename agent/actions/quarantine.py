"""Operator decisions on quarantined recordings: `evidence-agent accept` / `reject`.

A recording of a recorder that is not in the inventory is copied and hashed like any other,
then held (`quarantined`): never archived, never released. `accept` moves it on to `spooled`
(archive and release follow as usual); `reject` keeps it held and marks it rejected, so it is
neither lost nor processed. Each decision is a custody event naming operator and reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agent.core import clock
from agent.core.errors import AgentError, QuarantineError
from agent.ledger import recopy as recopied
from agent.ledger import recordings as rec
from agent.station.context import Context

Decision = Literal["accept", "reject"]


@dataclass
class Result:
    ref: str
    recording_id: str | None
    ok: bool
    message: str
    serial: str | None = None


def decide(
    ctx: Context, refs: list[str], decision: Decision, operator: str, reason: str
) -> list[Result]:
    if not operator.strip():
        raise QuarantineError("--operator is required: who decides (officer/operator id)")
    if not reason.strip():
        raise QuarantineError("--reason is required: why the recording is accepted or rejected")
    return [_one(ctx, ref, decision, operator.strip(), reason.strip()) for ref in refs]


def _one(ctx: Context, ref: str, decision: Decision, operator: str, reason: str) -> Result:
    at = clock.iso(clock.now())
    try:
        with ctx.ledger.tx() as conn:
            rid = rec.resolve(conn, ref)
            row = rec.get(conn, rid)
            assert row is not None
            serial = str(row["serial"])
            if row["state"] != "quarantined":
                raise QuarantineError(
                    f"recording {rid} ({serial}) is {row['state']}, not quarantined; only "
                    "quarantined recordings are accepted or rejected"
                )
            if decision == "accept" and recopied.mismatch_of(conn, rid) is not None:
                raise QuarantineError(
                    f"recording {rid} ({serial}) was copied again and the copy differs from "
                    "its recorded SHA-256; it stays quarantined (see `verify`), it cannot be "
                    "accepted"
                )
            if decision == "accept" and not row["sha256"]:  # e.g. agent.ingest.sealbroken
                raise QuarantineError(
                    f"recording {rid} ({serial}) has no verified copy to accept "
                    f"({row['reason']}); it stays quarantined"
                )
            previous = row["quarantine_decision"]
            if decision == "reject" and previous == "rejected":
                return Result(ref, rid, True, f"{rid} ({serial}) was already rejected", serial)
            fields = {
                "quarantine_decision": "accepted" if decision == "accept" else "rejected",
                "quarantine_decided_by": operator,
                "quarantine_decided_at": at,
            }
            state = "spooled" if decision == "accept" else "quarantined"
            rec.transition(
                conn,
                rid,
                state,
                fields=fields,
                custody_type=f"recording.{fields['quarantine_decision']}",
                payload={
                    "operator": operator,
                    "reason": reason,
                    "serial": serial,
                    "vendor": row["vendor"],
                    "previous_decision": previous,
                    "state": state,
                },
                actor=f"operator:{operator}",
                event=f"quarantine.{fields['quarantine_decision']}",
                event_fields={"recording": rid, "serial": serial, "operator": operator},
            )
    except AgentError as exc:
        return Result(ref, None, False, str(exc))
    verb = "accepted: now spooled, archived next" if decision == "accept" else "rejected: held"
    return Result(ref, rid, True, f"{rid} ({serial}) {verb}", serial)
