// opsdeck ops console: one page over the /ops API. No framework, no build step, nothing fetched
// from elsewhere: DOM built with createElement (data is only ever set as text), charts drawn as
// inline SVG, live refresh by polling the current view every POLL_MS while the tab is visible.
"use strict";

(() => {
  const POLL_MS = 2000;
  const REPLAY_POLL_MS = 500; // a running replay's progress (GET /ops/replays/{id})
  const REPLAY_FIRST_POLL_MS = 750; // the POST has stored the replay by then (before: 404, harmless)
  const SVG = "http://www.w3.org/2000/svg";
  const views = ["application", "queues", "schedules", "invocations", "charts"];
  const state = { view: null, me: null, peek: null, replayDlq: null, invocation: null, timer: null, busy: false };
  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ token
  function token() {
    const meta = document.querySelector('meta[name="opsdeck-token"]');
    if (meta && meta.content) return meta.content; // the local cloud's page: the dev issuer's token
    return sessionStorage.getItem("opsdeck-token") || "";
  }

  // -------------------------------------------------------------------- api
  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.detail || body.title || body.message)) || "HTTP " + status);
      this.status = status;
      this.body = body;
    }
  }

  async function api(path, options = {}) {
    const headers = { accept: "application/json" };
    const t = token();
    if (t) headers.authorization = "Bearer " + t;
    const init = { method: options.method || "GET", headers, credentials: "omit", cache: "no-store" };
    if (init.method !== "GET") {
      headers["x-opsdeck-console"] = "1";
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(options.body || {});
    }
    const started = performance.now();
    const response = await fetch(path, init);
    const text = await response.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (_) { body = { detail: text }; }
    performance.measure("ops " + path.split("?")[0], { start: started, end: performance.now() });
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  function status(text, bad) {
    const s = $("status");
    s.textContent = text || "";
    s.className = "status" + (bad ? " bad" : "");
  }

  // ------------------------------------------------------------------- DOM
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function pretty(value) {
    if (typeof value === "string") {
      try { return JSON.stringify(JSON.parse(value), null, 2); } catch (_) { return value; }
    }
    return JSON.stringify(value, null, 2);
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 90) return Math.round(seconds) + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h";
    return (seconds / 86400).toFixed(1) + " d";
  }

  function when(iso) {
    if (!iso) return "–";
    return iso.replace("T", " ").replace(/\.\d+Z$|Z$/, "");
  }

  function trigger(fn) {
    const t = fn.trigger;
    if (t.kind === "http") return t.routes.length + " route" + (t.routes.length === 1 ? "" : "s");
    if (t.kind === "schedule") return t.expression;
    if (t.kind === "queue") return "queue " + t.name;
    return t.kind;
  }

  function replaceRows(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  // Re-render a view only when its data changed: no DOM churn under a user's pointer while polling.
  const rendered = {};
  function changed(key, data) {
    const text = JSON.stringify(data) + "|" + canAct();
    if (rendered[key] === text) return false;
    rendered[key] = text;
    return true;
  }

  function canAct() {
    return !!(state.me && state.me.can_act);
  }

  // ----------------------------------------------------------- application
  async function renderApplication() {
    const data = await api("/ops/overview");
    const health = data.health;
    $("health").replaceChildren(
      el("div", { class: "check" }, "health ", el("b", { class: health.status === "ok" ? "ok" : "bad" }, health.status)),
      ...Object.entries(health.checks).map(([name, c]) =>
        el("div", { class: "check" }, name + " ",
          el("b", { class: c.status === "ok" ? "ok" : "bad" }, c.status === "ok" ? c.latency_ms + " ms" : c.status),
          c.error ? el("span", { class: "muted" }, " " + c.error) : null)),
    );
    $("capabilities").replaceChildren(...data.capabilities.map((cap) =>
      el("div", { class: "capability", dataset: { capability: cap.name } },
        el("h2", {}, cap.name),
        el("table", { class: "grid" },
          el("thead", {}, el("tr", {}, el("th", {}, "function"), el("th", {}, "trigger"),
            el("th", {}, "description"), el("th", { class: "n" }, "invocations (1 h)"),
            el("th", { class: "n" }, "errors"), el("th", { class: "n" }, "p95 ms"))),
          el("tbody", {}, cap.functions.map((fn) =>
            el("tr", { dataset: { function: fn.name } },
              el("td", {}, el("b", {}, fn.name)),
              el("td", {}, el("span", { class: "pill" }, fn.trigger.kind), " ", trigger(fn)),
              el("td", { class: "muted" }, fn.description),
              el("td", { class: "n" }, fn.last_hour.invocations),
              el("td", { class: "n" + (fn.last_hour.errors ? " bad" : "") }, fn.last_hour.errors),
              el("td", { class: "n" }, fn.last_hour.p95_ms === null ? "–" : fn.last_hour.p95_ms.toFixed(1)))))))));
  }

  // ----------------------------------------------------------------- queues
  async function renderQueues() {
    const data = await api("/ops/queues");
    if (changed("queues", data)) replaceRows($("queues-table").tBodies[0], data.queues.map((q) =>
      el("tr", { dataset: { queue: q.name } },
        el("td", {}, el("b", {}, q.name), q.dlq ? el("span", { class: "pill" }, " DLQ") : null),
        el("td", { class: "muted" }, q.consumer),
        el("td", { class: "n visible" + (q.dlq && q.visible ? " bad" : "") }, q.visible),
        el("td", { class: "n inflight" }, q.in_flight),
        el("td", { class: "n" }, age(q.oldest_age_s)),
        el("td", {},
          el("button", { type: "button", dataset: { action: "peek", queue: q.name }, on: { click: () => openPeek(q.name) } }, "Peek"),
          " ",
          q.dlq ? el("button", {
            type: "button", disabled: !canAct(), dataset: { action: "replay", queue: q.name },
            on: { click: () => openReplay(q.name) },
          }, "Replay…") : null))));
    if (state.peek) await renderPeek();
  }

  function openPeek(name) {
    state.peek = name;
    $("peek-panel").hidden = false;
    $("peek-queue").textContent = name;
    renderPeek().catch(showError);
  }

  async function renderPeek() {
    const data = await api("/ops/queues/" + encodeURIComponent(state.peek) + "/messages?limit=20");
    if (!changed("peek", data)) return;
    const list = $("peek-list");
    if (!data.messages.length) { list.replaceChildren(el("div", { class: "empty" }, "no messages")); return; }
    list.replaceChildren(...data.messages.map((m) =>
      el("div", { class: "message", dataset: { messageId: m.message_id } },
        el("div", { class: "meta" }, m.message_id, " · ", m.state, " · received ", m.receive_count, m.receive_count === 1 ? " time" : " times",
          m.attributes.SentTimestamp ? " · sent " + when(new Date(+m.attributes.SentTimestamp).toISOString()) : ""),
        m.failure ? el("div", { class: "failure" }, "failure: " + m.failure) : null,
        el("pre", { class: "body" }, pretty(m.body)),
        Object.keys(m.message_attributes || {}).length ? el("pre", { class: "attrs" }, pretty(m.message_attributes)) : null)));
  }

  function openReplay(name) {
    state.replayDlq = name;
    $("replay-panel").hidden = false;
    $("replay-dlq").textContent = name;
    $("replay-result").textContent = "";
    $("replay-progress").hidden = true;
  }

  function newReplayId() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  // one replay's progress: the bar counts what was handled (moved, failed or skipped) of the DLQ's
  // depth at the start (of the limit, when that is smaller and nothing filters)
  function showProgress(p, body) {
    const box = $("replay-progress");
    box.hidden = false;
    let total = p.total || 0;
    if (body.limit && !body.filter) total = Math.min(total, body.limit);
    const handled = body.dry_run ? p.examined : p.moved + p.failed + (p.done ? p.skipped : 0);
    const bar = $("replay-bar");
    bar.max = Math.max(total, handled, 1);
    bar.value = p.done ? bar.max : Math.min(handled, bar.max);
    $("replay-counts").textContent = (p.done ? "done" : "replaying") + ": examined " + p.examined + "/" + p.total +
      " · matched " + p.matched + " · " + (body.dry_run ? "would move " + p.matched : "moved " + p.moved) +
      (p.failed ? " · failed " + p.failed : "") + (p.stopped ? " · stopped (" + p.stopped + ")" : "") +
      (p.stalled ? " · stalled: no report for a minute" : "");
    $("replay-moved").textContent = p.message_ids.length ? (body.dry_run ? "would move: " : "moved so far: ") + p.message_ids.join(", ") : "";
    box.dataset.state = p.done ? "done" : "running";
    box.dataset.moved = String(p.moved);
  }

  function followReplay(id, body) {
    const follow = { stop: false, timer: null };
    const poll = async () => {
      if (follow.stop) return;
      try {
        const p = await api("/ops/replays/" + encodeURIComponent(id));
        if (!follow.stop) showProgress(p, body);
        if (p.done || p.stalled) follow.stop = true;
      } catch (e) {
        if (e.status !== 404) follow.stop = true; // 404: not stored yet
      }
      if (!follow.stop) follow.timer = setTimeout(poll, REPLAY_POLL_MS);
    };
    follow.timer = setTimeout(poll, REPLAY_FIRST_POLL_MS);
    return () => { follow.stop = true; clearTimeout(follow.timer); };
  }

  async function runReplay(event) {
    event.preventDefault();
    const body = { dry_run: $("replay-dry").checked };
    const filter = $("replay-filter").value.trim();
    const limit = $("replay-limit").value.trim();
    const rate = $("replay-rate").value.trim();
    const to = $("replay-to").value.trim();
    if (filter) body.filter = filter;
    if (limit) body.limit = Number(limit);
    if (rate) body.rate = rate;
    if (to) body.to = to;
    body.replay_id = newReplayId();
    const out = $("replay-result");
    const button = $("replay-run");
    button.disabled = true;
    $("replay-progress").hidden = true;
    delete $("replay-progress").dataset.state;
    delete out.dataset.moved;
    out.textContent = (body.dry_run ? "counting" : "replaying") + " " + state.replayDlq + "…";
    const stop = followReplay(body.replay_id, body);
    try {
      const r = await api("/ops/queues/" + encodeURIComponent(state.replayDlq) + "/replay", { method: "POST", body });
      stop();
      $("replay-progress").hidden = true;
      out.textContent = (body.dry_run ? "dry run: would move " + r.matched : "matched " + r.matched + ", moved " + r.moved) +
        " (" + r.method + (r.status ? ", " + r.status : "") + ")" + (r.scanned !== undefined ? ", scanned " + r.scanned : "") +
        (r.failed ? ", failed " + r.failed : "") +
        (r.stopped ? "\nstopped (" + r.stopped + "): what was not moved is back in the DLQ, replay again for the rest" : "") +
        " · audit #" + r.audit_id +
        (r.message_ids && r.message_ids.length ? "\n" + (body.dry_run ? "would move: " : "moved: ") + r.message_ids.join(", ") : "");
      out.dataset.moved = String(r.moved);
      await renderQueues();
    } catch (e) {
      stop();
      out.textContent = "refused: " + e.message;
    } finally {
      button.disabled = !canAct();
    }
  }

  // -------------------------------------------------------------- schedules
  async function renderSchedules() {
    const data = await api("/ops/schedules");
    if (changed("schedules", data)) replaceRows($("schedules-table").tBodies[0], data.schedules.map((s) =>
      el("tr", { dataset: { schedule: s.name } },
        el("td", {}, el("b", {}, s.name), el("div", { class: "muted" }, s.rule)),
        el("td", {}, s.function),
        el("td", {}, el("code", {}, s.expression)),
        el("td", {}, el("span", { class: "pill state " + s.state }, s.state)),
        el("td", {}, when(s.last_fire)),
        el("td", {}, when(s.next_fire)),
        el("td", { class: "muted" }, s.capability_state ? pretty(s.capability_state) : "–"),
        el("td", {},
          el("button", { type: "button", disabled: !canAct(), dataset: { action: "fire", schedule: s.name },
            on: { click: () => scheduleAction(s.name, "fire") } }, "Fire now"), " ",
          el("button", { type: "button", disabled: !canAct(),
            dataset: { action: s.state === "ENABLED" ? "disable" : "enable", schedule: s.name },
            on: { click: () => scheduleAction(s.name, s.state === "ENABLED" ? "disable" : "enable") } },
          s.state === "ENABLED" ? "Disable" : "Enable")))));
  }

  async function scheduleAction(name, action) {
    const out = $("schedule-result");
    try {
      const r = await api("/ops/schedules/" + encodeURIComponent(name) + "/" + action, { method: "POST" });
      out.textContent = action === "fire"
        ? "fired " + r.schedule + " → " + r.function + " (event " + r.event_id + ") · audit #" + r.audit_id
        : r.name + " is " + r.state + " · audit #" + r.audit_id;
      await renderSchedules();
    } catch (e) {
      out.textContent = action + " refused: " + e.message;
    }
  }

  // ------------------------------------------------------------ invocations
  let functionsListed = false;

  async function renderInvocations() {
    if (!functionsListed) {
      const data = await api("/ops/functions");
      $("inv-function").append(...data.functions.map((f) => el("option", { value: f.name }, f.name)));
      functionsListed = true;
    }
    const q = new URLSearchParams({ limit: "100", hide_console: $("inv-hide").checked ? "true" : "false" });
    for (const [key, id] of [["function", "inv-function"], ["trigger", "inv-trigger"], ["outcome", "inv-outcome"]]) {
      if ($(id).value) q.set(key, $(id).value);
    }
    let data;
    try {
      data = await api("/ops/invocations?" + q);
    } catch (e) {
      if (e.status === 501) {
        replaceRows($("invocations-table").tBodies[0], [el("tr", {}, el("td", { colspan: 6, class: "empty" }, e.message))]);
        return;
      }
      throw e;
    }
    if (!changed("invocations", [data, state.invocation])) return;
    replaceRows($("invocations-table").tBodies[0], data.invocations.map((i) =>
      el("tr", {
        class: "clickable" + (state.invocation === i.request_id ? " selected" : ""),
        dataset: { requestId: i.request_id, function: i.function },
        on: { click: () => openInvocation(i.request_id) },
      },
      el("td", {}, when(i.start)),
      el("td", {}, i.function),
      el("td", {}, i.trigger),
      el("td", { class: "muted" }, i.route || (i.trigger === "queue" ? (i.records + " record(s)") : (i.event_id || ""))),
      el("td", {}, el("span", { class: "pill " + i.outcome }, (i.status ? i.status + " " : "") + i.outcome),
        i.error ? el("div", { class: "bad" }, i.error) : null),
      el("td", { class: "n" }, Number(i.duration_ms).toFixed(1)))));
  }

  async function openInvocation(requestId) {
    state.invocation = requestId;
    const d = await api("/ops/invocations/" + encodeURIComponent(requestId));
    $("inv-detail").hidden = false;
    $("inv-id").textContent = d.function + " · " + d.request_id;
    $("inv-event").textContent = d.event === null ? "(not kept)" : pretty(d.event);
    $("inv-result").textContent = d.error ? pretty(d.error) : pretty(d.result);
    $("inv-logs").textContent = d.logs.length ? d.logs.join("\n") : "(no log lines)";
    $("inv-reinvoked").textContent = "";
    $("inv-reinvoke").disabled = !canAct() || !d.kept;
  }

  async function reinvoke() {
    const out = $("inv-reinvoked");
    try {
      const r = await api("/ops/invocations/" + encodeURIComponent(state.invocation) + "/reinvoke", { method: "POST" });
      out.textContent = "re-invoked " + r.function + ": " + r.outcome + " (request " + r.request_id + ") · audit #" + r.audit_id;
      await renderInvocations();
    } catch (e) {
      out.textContent = "re-invoke refused: " + e.message;
    }
  }

  // ----------------------------------------------------------------- charts
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  // series: [{values, color}], xs: labels; bars for the first series, lines for the others
  function chart(title, xs, series, legend) {
    const W = 360, H = 120, L = 30, B = 16, T = 6;
    const max = Math.max(1, ...series.flatMap((s) => s.values));
    const n = Math.max(1, xs.length);
    const x = (i) => L + (i + 0.5) * ((W - L - 4) / n);
    const y = (v) => T + (H - T - B) * (1 - v / max);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
    root.append(svg("line", { x1: L, y1: H - B, x2: W - 4, y2: H - B, stroke: "#c5cbd6" }));
    for (const v of [0, max]) {
      const label = svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", "font-size": 10, fill: "#687083" });
      label.textContent = String(Math.round(v));
      root.append(label);
    }
    for (const [i, xl] of [[0, xs[0]], [n - 1, xs[n - 1]]]) {
      if (!xl) continue;
      const label = svg("text", { x: x(i), y: H - 3, "text-anchor": i ? "end" : "start", "font-size": 10, fill: "#687083" });
      label.textContent = xl.slice(11, 16);
      root.append(label);
    }
    series.forEach((s, k) => {
      if (s.kind === "bars") {
        const w = Math.max(1, (W - L - 4) / n - 1);
        s.values.forEach((v, i) => {
          if (v) root.append(svg("rect", { x: x(i) - w / 2, y: y(v), width: w, height: H - B - y(v), fill: s.color }));
        });
      } else {
        const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
        root.append(svg("polyline", { points, fill: "none", stroke: s.color, "stroke-width": k ? 1.5 : 2 }));
      }
    });
    return el("div", { class: "chart", dataset: { chart: title } }, el("h3", {}, title), root,
      el("div", { class: "legend" }, legend));
  }

  async function renderCharts() {
    const data = await api("/ops/series?minutes=60");
    const fns = Object.keys(data.invocations).sort();
    $("chart-functions").replaceChildren(...(fns.length ? fns.map((name) => chart(name, data.minutes, [
      { kind: "bars", values: data.invocations[name], color: "#2f6fdf" },
      { kind: "line", values: data.errors[name] || data.minutes.map(() => 0), color: "#c93c37" },
    ], [el("span", { class: "swatch-inv" }, "■ invocations "), el("span", { class: "swatch-err" }, "— errors")]))
      : [el("div", { class: "empty" }, "no invocations in the last hour")]));
    const queues = Object.keys(data.queue_depth).sort();
    $("chart-queues").replaceChildren(...(queues.length ? queues.map((name) => {
      const points = data.queue_depth[name];
      return chart(name, points.map((p) => p[0]), [
        { kind: "line", values: points.map((p) => p[1]), color: "#2f6fdf" },
        { kind: "line", values: points.map((p) => p[2] || 0), color: "#b7791f" },
      ], [el("span", { class: "swatch-inv" }, "— visible "), el("span", { class: "swatch-flight" }, "— in flight")]);
    }) : [el("div", { class: "empty" }, "no queue samples yet")]));
  }

  // ------------------------------------------------------------------ shell
  const renderers = {
    application: renderApplication, queues: renderQueues, schedules: renderSchedules,
    invocations: renderInvocations, charts: renderCharts,
  };

  function showError(e) {
    if (e && (e.status === 401 || e.status === 403) && !document.querySelector('meta[name="opsdeck-token"]')) {
      $("signin").hidden = false;
    }
    status(e && e.message ? e.message : String(e), true);
  }

  async function refresh() {
    if (state.busy || !state.view) return;
    state.busy = true;
    try {
      await renderers[state.view]();
      document.body.dataset.refreshed = String(Date.now());
      status("");
    } catch (e) {
      showError(e);
    } finally {
      state.busy = false;
    }
  }

  function show(view) {
    if (!views.includes(view)) view = "application";
    state.view = view;
    for (const v of views) $("view-" + v).hidden = v !== view;
    for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.view === view);
    refresh();
  }

  function schedule() {
    clearInterval(state.timer);
    state.timer = setInterval(() => {
      if ($("live").checked && document.visibilityState === "visible") refresh();
    }, POLL_MS);
  }

  async function start() {
    try {
      state.me = await api("/ops/whoami");
      $("mode").textContent = state.me.mode;
      $("mode").className = "badge " + state.me.mode;
      $("who").textContent = state.me.subject + " (" + state.me.roles.join(", ") + ")" + (state.me.can_act ? "" : " · read only");
      $("signin").hidden = true;
    } catch (e) {
      showError(e);
      return;
    }
    show(location.hash.slice(1));
    schedule();
  }

  document.addEventListener("DOMContentLoaded", () => {
    window.addEventListener("hashchange", () => show(location.hash.slice(1)));
    $("replay-form").addEventListener("submit", runReplay);
    $("replay-close").addEventListener("click", () => { $("replay-panel").hidden = true; state.replayDlq = null; });
    $("inv-close").addEventListener("click", () => { $("inv-detail").hidden = true; state.invocation = null; });
    $("inv-reinvoke").addEventListener("click", reinvoke);
    $("inv-filter").addEventListener("change", () => refresh());
    $("signin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem("opsdeck-token", $("token").value.trim());
      start();
    });
    start();
  });
})();
