"""The MQTT commands: the JSON each one takes (strict pydantic models) and what it does.

Recording references are ids or SHA-256 prefixes of 12+ hex digits, checked before anything
runs, so `+`, `#`, `/` or any other junk is an error result naming the bad reference. A
command either validates completely or does nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from agent.core.errors import AgentError, CommandError, UnknownRecordingError
from agent.core.ids import is_recording_id, is_sha_prefix
from agent.ledger import custody
from agent.ledger import recordings as rec
from agent.mqtt.lazy import optional
from agent.retention import wipegate
from agent.station.context import Context

logger = logging.getLogger(__name__)


def _ref(value: str) -> str:
    if not (is_recording_id(value) or is_sha_prefix(value)):
        raise ValueError(f"{value!r} is not a recording id or a SHA-256 prefix of 12+ hex digits")
    return value


REF_PATTERN = (
    r"^([0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}|[0-9a-fA-F]{12,64})$"
)
Ref = Annotated[
    str,
    AfterValidator(_ref),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": REF_PATTERN,
            "description": "recording id, or SHA-256 prefix of 12+ hex digits",
        }
    ),
]
Refs = Annotated[list[Ref], Field(min_length=1, max_length=1000)]


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="Request id: echoed in the reply; a repeated id is answered, not re-run.",
    )


class OperatorCommand(Command):
    operator: str = Field(min_length=1, max_length=64, description="Who asks (custody actor).")
    reason: str | None = Field(None, max_length=500, description="Why (custody log).")


class TagCommand(OperatorCommand):
    recordings: Refs
    fields: dict[str, Any] = Field(
        min_length=1,
        description="Metadata fields to set (docs/compliance.md), e.g. confidentiality (none, "
        "personal_privacy, commercial_secret, state_secret) and stage (site_inspection, "
        "evidence_collection, service_of_documents, hearing, compulsory_measure, execution, "
        "other). `party` (执法对象) is refused: it is kept in the ledger only.",
        json_schema_extra={"propertyNames": {"not": {"enum": ["party", "执法对象"]}}},
    )


class RescanCommand(Command):
    operator: str | None = Field(None, min_length=1, max_length=64)


class ReleaseCommand(OperatorCommand):
    recordings: Refs


class PriorityCommand(OperatorCommand):
    recordings: Refs
    priority: int = Field(ge=-100, le=100, description="Higher is ingested/uploaded first.")


class InterviewCommand(OperatorCommand):
    # Session fields (case, room, interviewer, ...) are the interview module's to validate.
    model_config = ConfigDict(extra="allow", strict=True)


@dataclass(frozen=True)
class Origin:
    """Where a command came from, as written to the custody log."""

    client: str | None
    request_id: str | None
    key: str | None = None  # the console key a signed command was verified with

    def as_dict(self) -> dict[str, Any]:
        doc = {"origin": "mqtt", "client": self.client, "request_id": self.request_id}
        if self.key is not None:
            doc.update(via="mqtt", key=self.key)
        return doc


@dataclass(frozen=True)
class Env:
    ctx: Context
    origin: Origin
    rescan: Callable[[], None] | None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return json.loads(json.dumps(dataclasses.asdict(obj), default=str))
    return json.loads(json.dumps(obj, default=str))


def _resolve(ctx: Context, refs: list[str]) -> list[str]:
    conn = ctx.ledger.connect()
    ids: list[str] = []
    problems: list[str] = []
    for ref in refs:
        try:
            ids.append(rec.resolve(conn, ref))
        except UnknownRecordingError as exc:
            problems.append(str(exc))
    if problems:
        raise CommandError("; ".join(problems))
    return list(dict.fromkeys(ids))


def run_tag(cmd: TagCommand, env: Env) -> dict[str, Any]:
    tag = optional("agent.tagging.apply", "tag")
    if tag is None:
        raise CommandError("tagging not available on this station (agent.tagging.apply is missing)")
    if LEDGER_ONLY & {str(k).strip() for k in cmd.fields}:
        # A command on the broker is read by whoever may subscribe to it: the party concerned
        # (执法对象) is kept in the ledger only, so it is set through the gate, never here.
        raise CommandError(
            "party (执法对象) cannot be set over MQTT: it is kept in the ledger only; "
            "set it with `evidence-agent tag --party` at the station (docs/access.md)"
        )
    try:
        results = tag(
            env.ctx,
            list(cmd.recordings),
            dict(cmd.fields),
            actor=cmd.operator,
            reason=cmd.reason,
            origin="mqtt",
        )
    except AgentError as exc:
        raise CommandError(str(exc)) from None
    return {"tagged": [_public_result(_jsonable(r)) for r in results]}


# Metadata fields kept in the ledger only (agent.tagging.context_fields.LEDGER_ONLY, with
# their Chinese labels): never in a command's reply.
LEDGER_ONLY = {"party", "执法对象"}


def _public_result(result: dict[str, Any]) -> dict[str, Any]:
    meta = result.get("metadata")
    if isinstance(meta, dict):
        result["metadata"] = {k: v for k, v in meta.items() if k not in LEDGER_ONLY}
    return result


def run_rescan(_cmd: RescanCommand, env: Env) -> dict[str, Any]:
    if env.rescan is None:
        raise CommandError("rescan is only available while the daemon runs")
    env.rescan()
    return {"rescan": "requested"}


def _store(env: Env) -> Any:
    """The archive store the wipe gate asks before erasing (None: it then keeps the source)."""
    from agent.archive.stores import open_store

    try:
        return open_store(env.ctx)
    except Exception:  # noqa: BLE001 - no store means no release, never a crash
        logger.exception("cannot open the archive store for release")
        return None


def run_release(cmd: ReleaseCommand, env: Env) -> dict[str, Any]:
    ctx = env.ctx
    out = []
    for rid in _resolve(ctx, list(cmd.recordings)):
        row = rec.get(ctx.ledger.connect(), rid)
        if row is None or not row["docked"] or not row["volume"]:
            serial = row["serial"] if row is not None else "?"
            out.append({"recording": rid, "released": False, "reason": f"{serial} not docked"})
            continue
        decision = wipegate.release(ctx.cfg, ctx.ledger, rid, _store(env))
        out.append({"recording": rid, "released": decision.allowed, "reason": decision.reason})
    return {"recordings": out}


def run_priority(cmd: PriorityCommand, env: Env) -> dict[str, Any]:
    ids = _resolve(env.ctx, list(cmd.recordings))
    with env.ctx.ledger.tx() as conn:
        for rid in ids:
            old = conn.execute("SELECT priority FROM recordings WHERE id = ?", (rid,)).fetchone()
            rec.set_priority(conn, rid, cmd.priority)
            custody.append(
                conn,
                "recording.priority",
                {
                    "priority": cmd.priority,
                    "previous": old[0] if old else None,
                    "reason": cmd.reason,
                    **env.origin.as_dict(),
                },
                recording_id=rid,
                actor=cmd.operator,
            )
    return {"recordings": ids, "priority": cmd.priority}


def _interview(name: str) -> Callable[[InterviewCommand, Env], dict[str, Any]]:
    def run(cmd: InterviewCommand, env: Env) -> dict[str, Any]:
        fn = optional("agent.interview.commands", name)
        if fn is None:
            raise CommandError(
                "interview sessions not available on this station (agent.interview is missing)"
            )
        params = {**cmd.model_dump(exclude={"id"}), "source": "mqtt"}
        try:
            result = dict(_jsonable(fn(env.ctx, params)))
        except AgentError as exc:
            raise CommandError(str(exc)) from None
        if result.get("ok") is False:  # refused (e.g. a session already records): say so
            raise CommandError(str(result.get("error") or f"interview {name} refused"))
        return result

    return run


@dataclass(frozen=True)
class Handler:
    model: type[Command]
    run: Callable[[Any, Env], dict[str, Any]]


HANDLERS: dict[str, Handler] = {
    "tag": Handler(TagCommand, run_tag),
    "rescan": Handler(RescanCommand, run_rescan),
    "release": Handler(ReleaseCommand, run_release),
    "priority": Handler(PriorityCommand, run_priority),
    "interview_start": Handler(InterviewCommand, _interview("start")),
    "interview_stop": Handler(InterviewCommand, _interview("stop")),
}


def command_schemas() -> dict[str, dict[str, Any]]:
    """verb -> JSON Schema of its payload (kept in docs/schemas/command-<verb>.json)."""
    out = {}
    for verb, handler in HANDLERS.items():
        schema = handler.model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = f"Command {verb}"
        schema["description"] = (
            f"The `args` of a signed command on <prefix>/<station>/cmd/{verb} (envelope and "
            f"body: schema command-envelope; `operator` comes from the console key); the "
            f"reply is on <prefix>/<station>/reply/{verb} (schema command-reply)."
        )
        if "required" in schema:
            schema["required"] = [r for r in schema["required"] if r != "operator"]
        out[verb] = schema
    return out
