// The ghost dashboard: plain JavaScript, no build step. Everything live comes from the
// server's event stream (SSE); nothing polls. Text from tasks is only ever set with
// textContent (or written to the terminal widget), never parsed as HTML.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { tasks: new Map(), seq: 0, events: null, current: null, term: null,
                fit: null, output: null, pending: new Set(), timer: null,
                // Ids cleaned up: a fetch that was already in flight must not bring one back.
                gone: new Set() };

// -- talking to the server ----------------------------------------------------------------

async function api(path, options = {}) {
  const init = { credentials: "same-origin", ...options, headers: { ...(options.headers || {}) } };
  if (init.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(init.body);
  }
  const response = await fetch(path, init);
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) showSignIn();
  if (!response.ok) {
    const err = new Error((body.error && body.error.message) || response.statusText);
    err.status = response.status;
    throw err;
  }
  return body;
}

function toast(message, bad = false) {
  const el = $("#toast");
  el.textContent = message;
  el.className = bad ? "bad" : "";
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

function showSignIn() {
  $("#sign-in").hidden = false;
  $("#view-list").hidden = true;
  $("#view-task").hidden = true;
}

// -- formatting ---------------------------------------------------------------------------

const short = (id) => id.slice(0, 8);
function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}
function statusText(t) {
  if (t.status === "exited") return `exited ${t.exit_code}`;
  if (t.status === "killed") return `killed ${t.signal || ""}`.trim();
  return t.status;
}
function badge(t) {
  const span = document.createElement("span");
  span.className = `badge s-${t.status}` + (t.status === "exited" && t.exit_code ? " fail" : "");
  span.textContent = statusText(t);
  return span;
}
function cell(row, text, cls) {
  const td = row.insertCell();
  if (cls) td.className = cls;
  if (text instanceof Node) td.append(text); else td.textContent = text;
  return td;
}

// -- the task list ------------------------------------------------------------------------

function matches(t) {
  const q = $("#search").value.trim().toLowerCase();
  const status = $("#status-filter").value;
  const group = $("#group-filter").value;
  if (status && t.status !== status) return false;
  if (group && (t.group || "default") !== group) return false;
  if (!q) return true;
  return [t.id, t.name || "", t.command.join(" ")].some((s) => s.toLowerCase().includes(q));
}

function renderList() {
  const body = $("#tasks tbody");
  const rows = [...state.tasks.values()].sort((a, b) =>
    (b.started_at || "").localeCompare(a.started_at || ""));
  const shown = rows.filter(matches);
  body.replaceChildren();
  for (const t of shown) {
    const row = body.insertRow();
    row.dataset.id = t.id;
    const id = cell(row, short(t.id), "id");
    if (t.name) {
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = t.name;
      id.append(name);
    }
    cell(row, badge(t));
    cell(row, String(t.pid || ""), "wide");
    cell(row, t.command.join(" "), "cmd");
    cell(row, when(t.started_at), "time wide");
    cell(row, when(t.finished_at), "time wide");
    row.addEventListener("click", () => { location.hash = `#/task/${t.id}`; });
  }
  $("#empty").hidden = shown.length > 0;
  const groups = new Set(rows.map((t) => t.group || "default"));
  const select = $("#group-filter");
  const chosen = select.value;
  if (select.options.length - 1 !== groups.size) {
    select.replaceChildren(new Option("all groups", ""));
    for (const g of [...groups].sort()) select.add(new Option(g, g));
    select.value = chosen;
  }
}

async function loadTasks() {
  const data = await api("/api/tasks");
  state.tasks = new Map(data.tasks.map((t) => [t.id, t]));
  state.seq = data.seq;
  renderList();
}

// The event stream: every record names a task; fetch that task again (batched) and redraw.
function followEvents() {
  if (state.events) state.events.close();
  const source = new EventSource(`/api/events/stream?from=${state.seq}`);
  state.events = source;
  source.onopen = () => { $("#conn").textContent = "live"; $("#conn").className = "conn live"; };
  source.onerror = () => { $("#conn").textContent = "reconnecting"; $("#conn").className = "conn down"; };
  source.onmessage = (msg) => {
    const record = JSON.parse(msg.data);
    state.seq = record.seq;
    if (!record.task) return;
    if (record.type === "cleaned") {
      state.gone.add(record.task);
      state.tasks.delete(record.task);
      renderList();
      if (state.current === record.task) toast("This task was cleaned up.");
      return;
    }
    state.pending.add(record.task);
    clearTimeout(state.timer);
    state.timer = setTimeout(refreshPending, 30);
  };
}

async function refreshPending() {
  const ids = [...state.pending];
  state.pending.clear();
  await Promise.all(ids.map(async (id) => {
    try {
      const t = await api(`/api/tasks/${id}`);
      if (state.gone.has(id)) return;
      state.tasks.set(id, t);
      if (state.current === id) showDetails(t);
    } catch (err) {
      if (err.status === 404) state.tasks.delete(id);
    }
  }));
  renderList();
  if (ids.includes(state.current)) loadHistory(state.current);
}

// -- one task -----------------------------------------------------------------------------

function showDetails(t) {
  $("#t-title").textContent = (t.name ? `${t.name} · ` : "") + t.command.join(" ");
  const dl = $("#t-details");
  dl.replaceChildren();
  const rows = [["id", t.id], ["status", badge(t)], ["pid", String(t.pid)], ["cwd", t.cwd],
    ["group", t.group || "default"], ["started", when(t.started_at)],
    ["ended", when(t.finished_at) || "—"]];
  if (t.reason) rows.push(["reason", t.reason]);
  if (t.rusage && t.rusage.max_rss_kb) rows.push(["max RSS", `${t.rusage.max_rss_kb} KiB`]);
  for (const [k, v] of rows) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd");
    if (v instanceof Node) dd.append(v); else dd.textContent = v;
    dl.append(dt, dd);
  }
  const running = t.status === "running";
  for (const b of document.querySelectorAll("#view-task [data-act]")) {
    const act = b.dataset.act;
    b.disabled = act === "cleanup" ? running : act === "restart" ? false : !running;
  }
  const interactive = running && (t.input === "pty" || t.input === "pipe");
  $("#t-input").hidden = !interactive;
  state.interactive = interactive;
  state.pty = t.input === "pty";
}

async function loadHistory(id) {
  try {
    const data = await api(`/api/tasks/${id}/history`);
    const list = $("#t-history");
    list.replaceChildren();
    for (const e of data.events) {
      const li = document.createElement("li");
      const time = document.createElement("span"); time.className = "when";
      time.textContent = when(e.time);
      const what = document.createElement("span"); what.className = "what";
      what.textContent = e.type;
      const who = document.createElement("span"); who.className = "muted";
      const actor = e.actor || {};
      who.textContent = [actor.via, actor.remote, actor.user].filter(Boolean).join(" · ");
      const extra = document.createElement("span");
      extra.textContent = e.type === "exited" ? `code ${e.code}` :
        e.type === "killed" ? e.signal : e.type === "stop_requested" ? e.signal :
        e.type === "lost" ? e.reason : e.type === "spawn_failed" ? e.error : "";
      li.append(time, what, extra, who);
      list.append(li);
    }
  } catch (err) {
    if (err.status !== 404) toast(err.message, true);
  }
}

function terminal() {
  if (state.term) return state.term;
  const term = new window.Terminal({ convertEol: true, scrollback: 10000, fontSize: 13,
    theme: { background: "#000000" } });
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open($("#term"));
  term.onData((data) => {
    if (state.interactive && state.current) sendInput(state.current, data);
  });
  term.onResize(({ cols, rows }) => {
    if (state.pty && state.interactive && state.current) {
      api(`/api/tasks/${state.current}/resize`, { method: "POST", body: { cols, rows } })
        .catch(() => {});
    }
  });
  window.addEventListener("resize", () => { if (!$("#view-task").hidden) fit.fit(); });
  state.term = term;
  state.fit = fit;
  return term;
}

// Keystrokes go out one request at a time, in order; what is typed meanwhile is sent next,
// together.
const input = { pending: "", sending: false };
async function sendInput(id, data) {
  input.pending += data;
  if (input.sending) return;
  input.sending = true;
  try {
    while (input.pending) {
      const chunk = input.pending;
      input.pending = "";
      await api(`/api/tasks/${id}/write`, { method: "POST", body: { data: chunk } });
    }
  } catch (err) {
    input.pending = "";
    toast(err.message, true);
  } finally {
    input.sending = false;
  }
}

function followOutput(id) {
  if (state.output) state.output.close();
  const term = terminal();
  term.reset();
  const source = new EventSource(`/api/tasks/${id}/output/stream?offset=0`);
  state.output = source;
  source.addEventListener("output", (msg) => term.write(JSON.parse(msg.data).data));
  source.addEventListener("end", (msg) => {
    source.close();
    const t = JSON.parse(msg.data);
    state.tasks.set(t.id, t);
    if (state.current === t.id) showDetails(t);
  });
}

async function openTask(id) {
  state.current = id;
  $("#view-list").hidden = true;
  $("#view-task").hidden = false;
  try {
    const t = await api(`/api/tasks/${id}`);
    state.current = t.id;
    showDetails(t);
    const term = terminal();
    state.fit.fit();
    if (state.pty && state.interactive) {  // the task's terminal takes the widget's size
      api(`/api/tasks/${t.id}/resize`, { method: "POST", body: { cols: term.cols, rows: term.rows } })
        .catch(() => {});
    }
    followOutput(t.id);
    loadHistory(t.id);
  } catch (err) {
    $("#t-title").textContent = err.message;
  }
}

const CONFIRM = {
  stop: "Stop this task? (SIGTERM to its process group, SIGKILL after 10 s)",
  kill: "Kill this task now? (SIGKILL to its process group)",
  restart: "Restart this task?",
  cleanup: "Clean up this task? It is forgotten (history keeps it) and its log is deleted.",
};

async function act(action) {
  const id = state.current;
  if (!id || !window.confirm(CONFIRM[action])) return;
  const button = document.querySelector(`[data-act="${action}"]`);
  button.disabled = true;
  try {
    if (action === "cleanup") {
      await api(`/api/tasks/${id}`, { method: "DELETE" });
      state.gone.add(id);
      state.tasks.delete(id);
      location.hash = "#/";
      toast("Cleaned up.");
      return;
    }
    const t = await api(`/api/tasks/${id}/${action}`, { method: "POST", body: {} });
    if (action === "restart") { followOutput(t.id); }
    toast(`${action}: ${statusText(t)}`);
  } catch (err) {
    toast(err.message, true);
  } finally {
    button.disabled = false;
  }
}

// -- the run form -------------------------------------------------------------------------

async function submitRun(event) {
  event.preventDefault();
  const form = event.target;
  const body = { command: form.command.value };
  if (form.cwd.value.trim()) body.cwd = form.cwd.value.trim();
  const env = {};
  for (const line of form.env.value.split("\n")) {
    if (!line.trim()) continue;
    const at = line.indexOf("=");
    if (at < 1) { showRunError(`environment: expected NAME=VALUE, got ${line.slice(0, 40)}`); return; }
    env[line.slice(0, at).trim()] = line.slice(at + 1);
  }
  if (Object.keys(env).length) body.env = env;
  if (form.name.value.trim()) body.name = form.name.value.trim();
  if (form.group.value.trim()) body.group = form.group.value.trim();
  if (form.pty.checked) body.pty = true;
  try {
    const t = await api("/api/tasks", { method: "POST", body });
    $("#run-dialog").close();
    form.reset();
    location.hash = `#/task/${t.id}`;
  } catch (err) {
    showRunError(err.message);
  }
}
function showRunError(message) {
  const el = $("#run-error");
  el.textContent = message;
  el.hidden = false;
}

// -- routing ------------------------------------------------------------------------------

function route() {
  const match = location.hash.match(/^#\/task\/([A-Za-z0-9._-]+)$/);
  if (match) { openTask(match[1]); return; }
  state.current = null;
  if (state.output) { state.output.close(); state.output = null; }
  $("#view-task").hidden = true;
  $("#view-list").hidden = false;
  renderList();
}

async function start() {
  $("#run-open").addEventListener("click", () => { $("#run-error").hidden = true; $("#run-dialog").showModal(); });
  $("#run-cancel").addEventListener("click", () => $("#run-dialog").close());
  $("#run-form").addEventListener("submit", submitRun);
  for (const id of ["#search", "#status-filter", "#group-filter"]) {
    $(id).addEventListener("input", renderList);
  }
  for (const b of document.querySelectorAll("#view-task [data-act]")) {
    b.addEventListener("click", () => act(b.dataset.act));
  }
  window.addEventListener("hashchange", route);
  try {
    await loadTasks();
  } catch (err) {
    if (err.status !== 401) toast(err.message, true);
    return;
  }
  followEvents();
  route();
}

start();
