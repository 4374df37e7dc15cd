// What the dashboard knows about the fleet, built only from messages on the broker.
// Every topic and payload is untrusted: a topic that does not match the documented layout
// (docs/mqtt.md), a payload that is too large, not JSON or not an object is ignored, and
// only the documented fields are read, each checked for its type.

export const ID_RE = /^[A-Za-z0-9_.-]{1,128}$/;
export const PREFIX_RE = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;
const MAX_PAYLOAD = 64 * 1024; // the stations ask the broker for nothing larger either
const MAX_EVENTS = 200;
const MAX_DEADLINE_ALERTS = 20;
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The subscriptions for `prefix` (every station, every unit ratio). */
export function topicsFor(prefix) {
  return [
    `${prefix}/+/availability`,
    `${prefix}/+/state`,
    `${prefix}/+/recorders/+/state`,
    `${prefix}/+/compliance`,
    `${prefix}/+/events`,
    `${prefix}/units/+/ratio`,
  ];
}

export function str(value, max = 200) {
  return typeof value === "string" ? value.slice(0, max) : null;
}

export function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

export function bool(value) {
  return typeof value === "boolean" ? value : null;
}

export function obj(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : null;
}

function decode(bytes) {
  if (bytes.length > MAX_PAYLOAD) return null;
  try {
    return decoder.decode(bytes);
  } catch {
    return null;
  }
}

function parseObject(text) {
  try {
    return obj(JSON.parse(text));
  } catch {
    return null;
  }
}

export class Fleet {
  constructor(prefix) {
    this.prefix = prefix;
    this.stations = new Map(); // id -> station record
    this.units = new Map(); // unit id -> fleet ratio payload
    this.events = []; // newest first
    this.eventIds = new Set();
  }

  station(id) {
    let st = this.stations.get(id);
    if (!st) {
      st = {
        id,
        availability: null,
        state: null,
        compliance: null,
        recorders: new Map(),
        alerts: [], // deadline.at_risk / deadline.missed events, newest first
      };
      this.stations.set(id, st);
    }
    return st;
  }

  /** Take one message; returns "event" for a new event, "state" for other changes, else null. */
  handle(topic, bytes) {
    if (typeof topic !== "string" || !topic.startsWith(this.prefix + "/")) return null;
    const parts = topic.slice(this.prefix.length + 1).split("/");
    const text = decode(bytes);
    if (text === null) return null;
    if (parts.length === 3 && parts[0] === "units" && parts[2] === "ratio") {
      return this.unitRatio(parts[1], text);
    }
    const id = parts[0];
    if (id === "units" || !ID_RE.test(id)) return null;
    if (parts.length === 2) return this.stationTopic(id, parts[1], text);
    if (parts.length === 4 && parts[1] === "recorders" && parts[3] === "state") {
      return this.recorder(id, parts[2], text);
    }
    return null;
  }

  stationTopic(id, leaf, text) {
    if (leaf === "availability") {
      if (text !== "online" && text !== "offline") return null;
      this.station(id).availability = text;
      return "state";
    }
    if (leaf === "events") return this.event(id, text);
    if (leaf !== "state" && leaf !== "compliance") return null;
    const payload = parseObject(text);
    if (payload === null) return null;
    this.station(id)[leaf] = payload;
    return "state";
  }

  recorder(id, serialInTopic, text) {
    if (!ID_RE.test(serialInTopic)) return null;
    const st = this.station(id);
    if (text === "") {
      // A cleared retained topic: the recorder is gone from this station.
      return st.recorders.delete(serialInTopic) ? "state" : null;
    }
    const payload = parseObject(text);
    if (payload === null) return null;
    st.recorders.set(serialInTopic, payload);
    return "state";
  }

  unitRatio(unitInTopic, text) {
    if (!ID_RE.test(unitInTopic)) return null;
    if (text === "") return this.units.delete(unitInTopic) ? "state" : null;
    const payload = parseObject(text);
    if (payload === null) return null;
    this.units.set(unitInTopic, payload);
    return "state";
  }

  event(id, text) {
    const ev = parseObject(text);
    if (ev === null) return null;
    const eid = str(ev.id, 64);
    const type = str(ev.type, 64);
    // Delivery is at least once: an event seen before (same id) is dropped.
    if (!eid || !type || this.eventIds.has(eid)) return null;
    this.eventIds.add(eid);
    const st = this.station(id);
    const item = { id: eid, type, station: id, payload: ev };
    this.events.unshift(item);
    for (const old of this.events.splice(MAX_EVENTS)) this.eventIds.delete(old.id);
    if (type === "deadline.at_risk" || type === "deadline.missed") {
      st.alerts.unshift(item);
      st.alerts.splice(MAX_DEADLINE_ALERTS);
    }
    return "event";
  }
}
