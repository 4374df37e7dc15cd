// Rendering of the fleet model into the page. Text from payloads is untrusted: it only ever
// becomes a text node or an attribute value through the DOM API, never HTML.

import { t } from "./i18n.js";
import { bool, num, obj, str } from "./model.js";

const DASH = "—";
const ISO_RE = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** An element with attributes (class, data-*, title) and children (nodes or text). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A station time as published (in the station's zone, with its offset): never converted. */
export function fmtTime(value) {
  const m = ISO_RE.exec(str(value, 64) || "");
  if (!m) return DASH;
  return `${m[1]} ${m[2]} ${m[4] === "Z" ? "+00:00" : m[4]}`;
}

export function fmtBytes(value) {
  const n = num(value);
  if (n === null) return DASH;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

function fmtNum(value) {
  const n = num(value);
  return n === null ? DASH : String(n);
}

function fmtBool(value) {
  const b = bool(value);
  return b === null ? DASH : t(b ? "yes" : "no");
}

function kpi(field, label, value, warn) {
  return el(
    "div",
    { class: warn ? "kpi warn" : "kpi", "data-field": field },
    el("dt", {}, label),
    el("dd", {}, value),
  );
}

function header(st) {
  const state = obj(st.state) || {};
  const avail = st.availability || "unknown";
  const role = str(state.role, 32);
  return el(
    "header",
    {},
    el("h2", {}, st.id),
    el("span", { class: `badge ${avail}`, "data-field": "availability" }, t(avail)),
    el(
      "span",
      { class: "meta" },
      role ? t(`role.${role}`, role) : "",
      str(state.version, 32) ? ` · ${t("version")} ${str(state.version, 32)}` : "",
      ` · ${t("updated")} ${fmtTime(state.at)}`,
    ),
  );
}

function kpis(st) {
  const state = obj(st.state) || {};
  const queue = obj(state.queue) || {};
  const backlog = obj(state.upload_backlog) || {};
  return el(
    "dl",
    { class: "kpis" },
    kpi("queue", t("queue"), fmtNum(queue.total)),
    kpi(
      "backlog",
      t("backlog"),
      `${fmtNum(backlog.recordings)} (${fmtBytes(backlog.bytes)})`,
    ),
    kpi("spool_free", t("spool_free"), fmtBytes(state.spool_free_bytes)),
    kpi("clock", t("clock"), fmtBool(state.clock_synced), state.clock_synced === false),
    kpi("outbox", t("outbox"), fmtNum(state.outbox_pending)),
  );
}

function deadlines(st) {
  const comp = obj(st.compliance) || {};
  const dl = obj(comp.deadlines) || {};
  const state = obj(st.state) || {};
  const overdue = num(dl.overdue) ?? num(state.deadlines_overdue);
  return el(
    "div",
    { class: "deadlines" },
    el("h3", {}, t("deadlines")),
    el(
      "dl",
      { class: "kpis" },
      kpi("at_risk", t("at_risk"), fmtNum(dl.due), num(dl.due) > 0),
      kpi("missed", t("missed"), fmtNum(overdue), overdue > 0),
      kpi("open", t("open_deadlines"), fmtNum(dl.open)),
      kpi("next_deadline", t("next_deadline"), fmtTime(comp.next_deadline ?? state.oldest_open_deadline)),
      kpi("untagged", t("untagged"), fmtNum(comp.untagged), num(comp.untagged_overdue) > 0),
      kpi("not_docked", t("not_docked"), fmtNum(comp.recorders_not_docked), num(comp.recorders_not_docked) > 0),
    ),
    alerts(st),
  );
}

function alerts(st) {
  if (!st.alerts.length) return null;
  return el(
    "ul",
    { class: "alerts" },
    st.alerts.map((a) =>
      el(
        "li",
        { class: a.type === "deadline.missed" ? "missed" : "at-risk", "data-event-id": a.id },
        `${t(`event.${a.type}`, a.type)}: ${str(a.payload.serial, 64) || DASH} · ` +
          `${t("recording")} ${str(a.payload.recording, 64) || DASH} · ` +
          `${t("deadline")} ${fmtTime(a.payload.deadline)}`,
      ),
    ),
  );
}

function battery(rec) {
  const pct = num(rec.battery);
  if (pct === null) return DASH;
  return rec.charging === true ? `${pct}% ⚡` : `${pct}%`;
}

function pending(rec) {
  const files = num(rec.files_pending);
  if (files === null) return DASH;
  return `${files} ${t("files")} / ${fmtBytes(rec.bytes_pending)}`;
}

function progress(rec) {
  const p = obj(rec.progress);
  const pct = p ? num(p.percent) : null;
  return pct === null ? DASH : `${pct.toFixed(0)}%`;
}

function recorderRow(serial, rec) {
  const status = str(rec.status, 32);
  const low = num(rec.battery) !== null && rec.battery < 20;
  return el(
    "tr",
    { "data-serial": serial },
    el("td", { "data-field": "serial" }, str(rec.serial, 64) || serial),
    el("td", { "data-field": "officer" }, str(rec.officer, 64) || DASH),
    el("td", { "data-field": "unit", title: str(rec.unit_name, 64) }, str(rec.unit, 64) || DASH),
    el("td", { "data-field": "status" }, status ? t(`status.${status}`, status) : DASH),
    el("td", { "data-field": "docked" }, fmtBool(rec.docked)),
    el("td", { "data-field": "battery", class: low ? "warn" : null }, battery(rec)),
    el("td", { "data-field": "pending" }, pending(rec)),
    el("td", { "data-field": "progress" }, progress(rec)),
    el("td", { "data-field": "last_docked" }, fmtTime(rec.last_docked)),
  );
}

function table(cls, heads, rows, empty) {
  if (!rows.length) return el("p", { class: "empty" }, empty);
  return el(
    "table",
    { class: cls },
    el("thead", {}, el("tr", {}, heads.map((h) => el("th", {}, t(h))))),
    el("tbody", {}, rows),
  );
}

function recorders(st) {
  const rows = [...st.recorders.keys()].sort().map((s) => recorderRow(s, st.recorders.get(s)));
  const heads = ["serial", "officer", "unit", "status", "docked", "battery", "pending", "progress", "last_docked"];
  return el("div", { class: "recorders" }, el("h3", {}, t("recorders")), table("recorders", heads, rows, t("recorders.none")));
}

/** One unit's ratio (the same object in compliance.units and on units/<unit>/ratio). */
function unitRow(u, extra) {
  const ratio = num(u.ratio);
  const ok = bool(u.compliant);
  const per = num(u.officers_per_recorder);
  const unit = str(u.unit, 64) || DASH;
  const name = str(u.unit_name, 64);
  return el(
    "tr",
    { "data-unit": unit, class: ok === false ? "warn" : null },
    el("td", { "data-field": "unit" }, name && name !== unit ? `${name} (${unit})` : unit),
    el("td", { "data-field": "active_officers" }, fmtNum(u.active_officers)),
    el("td", { "data-field": "recorders_counted" }, `${fmtNum(u.recorders_counted)} / ${fmtNum(u.required)}`),
    el("td", { "data-field": "rule" }, ratio === null ? DASH : `1:${ratio}`),
    el("td", { "data-field": "officers_per_recorder" }, per === null ? DASH : per.toFixed(2)),
    el("td", { "data-field": "compliant", class: ok ? "ok" : "bad" }, ok === null ? DASH : t(ok ? "compliant" : "not_compliant")),
    extra === undefined ? null : el("td", { "data-field": "computed_by" }, extra),
  );
}

const UNIT_HEADS = ["unit", "active_officers", "recorders_counted", "rule", "officers_per_recorder", "compliant"];

function units(st) {
  const comp = obj(st.compliance) || {};
  const list = Array.isArray(comp.units) ? comp.units.map(obj).filter(Boolean) : [];
  const rows = list.map((u) => unitRow(u));
  return el("div", { class: "units" }, el("h3", {}, t("units")), table("units", UNIT_HEADS, rows, t("units.none")));
}

export function stationCard(st) {
  const cls = `station ${st.availability === "offline" ? "is-offline" : ""}`;
  return el("section", { class: cls, "data-station": st.id }, header(st), kpis(st), deadlines(st), recorders(st), units(st));
}

export function renderStations(container, fleet) {
  const ids = [...fleet.stations.keys()].sort();
  if (!ids.length) {
    container.replaceChildren(el("p", { class: "empty" }, t("stations.none")));
    return;
  }
  container.replaceChildren(...ids.map((id) => stationCard(fleet.stations.get(id))));
}

export function renderFleetUnits(container, fleet) {
  const keys = [...fleet.units.keys()].sort();
  if (!keys.length) {
    container.replaceChildren();
    container.hidden = true;
    return;
  }
  container.hidden = false;
  const rows = keys.map((k) => {
    const u = fleet.units.get(k);
    return unitRow(u, str(u.computed_by, 64) || DASH);
  });
  container.replaceChildren(
    el("h2", {}, t("fleet_units")),
    table("units fleet", [...UNIT_HEADS, "computed_by"], rows, ""),
  );
}

function eventDetail(p) {
  const parts = [];
  const serial = str(p.serial, 64);
  if (serial) parts.push(serial);
  const rec = str(p.recording, 64);
  if (rec) parts.push(`${t("recording")} ${rec}`);
  const reason = str(p.reason, 120);
  if (reason) parts.push(reason);
  if (str(p.deadline, 64)) parts.push(`${t("deadline")} ${fmtTime(p.deadline)}`);
  return parts.join(" · ");
}

export function eventItem(ev) {
  const bad = /failed|missed|violation|error|low|gap|unknown/.test(ev.type);
  // When the event was first put on the page (wall clock, ms): its delivery latency, shown.
  if (!ev.shownAt) ev.shownAt = Date.now();
  return el(
    "li",
    {
      "data-event-id": ev.id,
      "data-station": ev.station,
      "data-type": ev.type,
      "data-shown-at": String(ev.shownAt),
      class: bad ? "bad" : null,
    },
    el("time", {}, fmtTime(ev.payload.at)),
    el("span", { class: "ev-station" }, ev.station),
    el("span", { class: "ev-type", title: ev.type }, t(`event.${ev.type}`, ev.type)),
    el("span", { class: "ev-detail" }, eventDetail(ev.payload)),
  );
}

export function renderEvents(container, fleet) {
  if (!fleet.events.length) {
    container.replaceChildren(el("li", { class: "empty" }, t("events.none")));
    return;
  }
  container.replaceChildren(...fleet.events.map(eventItem));
}
