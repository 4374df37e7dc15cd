// The fleet dashboard: connects to the broker over WebSockets with MQTT.js (vendor/), subscribes
// to the stations' status topics and renders what it hears. It only reads: it never publishes.
//
// Settings, first found wins: the query string (?broker=ws://host:9001&prefix=evidence&lang=en
// &user=dashboard), then what was last used in this browser (localStorage), then defaults.
// The password is never stored or put in a URL; type it in the form.

import { LANGUAGES, language, setLanguage, t, translatePage } from "./i18n.js";
import { Fleet, PREFIX_RE, topicsFor } from "./model.js";
import { renderEvents, renderFleetUnits, renderStations } from "./view.js";

const STORE = "evidence-dashboard.";
const $ = (id) => document.getElementById(id);

const ui = {
  form: $("connect-form"),
  broker: $("broker"),
  prefix: $("prefix"),
  user: $("user"),
  password: $("password"),
  status: $("conn-status"),
  lang: $("lang"),
  count: $("station-count"),
  stations: $("stations"),
  fleetUnits: $("fleet-units"),
  events: $("events"),
};

let client = null;
let fleet = new Fleet("evidence");
let connState = "conn.idle";
let connDetail = "";
let pending = null;

function stored(key) {
  try {
    return localStorage.getItem(STORE + key);
  } catch {
    return null; // storage disabled (private mode, file://): settings just are not kept
  }
}

function store(key, value) {
  try {
    localStorage.setItem(STORE + key, value);
  } catch {
    /* not kept, see stored() */
  }
}

function defaultBroker() {
  const host = location.hostname || "localhost";
  return `${location.protocol === "https:" ? "wss" : "ws"}://${host}:9001`;
}

function settings() {
  const q = new URLSearchParams(location.search);
  return {
    broker: q.get("broker") || stored("broker") || defaultBroker(),
    prefix: q.get("prefix") || stored("prefix") || "evidence",
    user: q.get("user") || stored("user") || "",
    lang: q.get("lang") || stored("lang") || "zh",
  };
}

function validBroker(url) {
  try {
    const u = new URL(url);
    return u.protocol === "ws:" || u.protocol === "wss:";
  } catch {
    return false;
  }
}

function showStatus(key, detail = "") {
  connState = key;
  connDetail = detail;
  ui.status.textContent = detail ? `${t(key)}: ${detail}` : t(key);
  ui.status.dataset.state = key.replace("conn.", "");
}

function render() {
  pending = null;
  renderStations(ui.stations, fleet);
  renderFleetUnits(ui.fleetUnits, fleet);
  renderEvents(ui.events, fleet);
  ui.count.textContent = `${fleet.stations.size} ${t("stations.count")}`;
}

// Retained state arrives in bursts (every topic on connect): render at most 5 times a second.
function scheduleRender() {
  if (pending === null) pending = setTimeout(render, 200);
}

function disconnect() {
  if (client) {
    client.end(true);
    client = null;
  }
  showStatus("conn.closed");
}

function connect() {
  const url = ui.broker.value.trim();
  const prefix = ui.prefix.value.trim().replace(/\/+$/, "");
  if (!validBroker(url)) return showStatus("conn.error", t("conn.bad_url"));
  if (!PREFIX_RE.test(prefix)) return showStatus("conn.error", t("conn.bad_prefix"));
  disconnect();
  store("broker", url);
  store("prefix", prefix);
  store("user", ui.user.value.trim());
  fleet = new Fleet(prefix);
  render();
  const rand = Math.random().toString(16).slice(2, 10);
  const c = window.mqtt.connect(url, {
    protocolVersion: 5,
    clientId: `evidence-dashboard-${rand}`,
    clean: true,
    resubscribe: false, // subscribed again in "connect" below
    reconnectPeriod: 3000,
    connectTimeout: 10000,
    username: ui.user.value.trim() || undefined,
    password: ui.password.value || undefined,
  });
  client = c;
  showStatus("conn.connecting");
  const topics = topicsFor(prefix);
  const current = () => client === c; // events of a client replaced by a new connect are stale
  let lastError = ""; // kept on screen while retrying ("Not authorized" must not flash by)
  c.on("connect", () => {
    if (!current()) return;
    lastError = "";
    showStatus("conn.connected", url);
    c.subscribe(topics, { qos: 1 }, (err) => {
      if (err && current()) showStatus("conn.error", String(err.message || err));
    });
  });
  c.on("reconnect", () => current() && showStatus("conn.reconnecting", lastError));
  c.on("error", (err) => {
    lastError = String(err.message || err);
    if (current()) showStatus("conn.error", lastError);
  });
  c.on("message", (topic, payload) => {
    if (current() && fleet.handle(topic, payload)) scheduleRender();
  });
}

function toggleLanguage() {
  const next = LANGUAGES[(LANGUAGES.indexOf(language()) + 1) % LANGUAGES.length];
  setLanguage(next);
  store("lang", next);
  translatePage(document);
  showStatus(connState, connDetail);
  render();
}

function start() {
  const s = settings();
  setLanguage(s.lang);
  translatePage(document);
  ui.broker.value = s.broker;
  ui.prefix.value = s.prefix;
  ui.user.value = s.user;
  ui.form.addEventListener("submit", (e) => {
    e.preventDefault();
    connect(); // with the form's current values; an open connection is replaced
  });
  ui.lang.addEventListener("click", toggleLanguage);
  render();
  showStatus("conn.idle");
  if (!window.mqtt) return showStatus("conn.error", "vendor/mqtt.min.js did not load");
  connect();
}

start();
