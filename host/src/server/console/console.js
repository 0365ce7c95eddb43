// The console of `host serve` (docs/CONSOLE.md). It uses only the public
// /v1 API: JSON requests and Server-Sent Events read with fetch (an
// EventSource cannot send the bearer token). Every piece of text from the
// server goes into the page as text nodes, never as HTML.

const TOKEN_KEY = 'host.console.token';
const CLIP = 64 * 1024; // characters of a JSON document shown before "Show all"
const STEP_EVENTS = 400; // events kept per step in the page
const FINAL = new Set(['run.completed', 'run.failed', 'run.cancelled']);
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const STATUSES = ['queued', 'running', 'waiting_approval', 'completed', 'failed', 'cancelled'];

const main = document.getElementById('main');
let token = sessionStorage.getItem(TOKEN_KEY) || '';
let view = null; // AbortController of the view on screen

// ---------- small helpers ----------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const fmtTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
function when(ms) { return ms ? fmtTime.format(new Date(ms)) : '—'; }
function duration(ms) {
  if (ms === null || ms === undefined || ms < 0) return '—';
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
function tokens(usage) {
  let n = 0;
  for (const u of Object.values(usage || {})) n += (u && u.total_tokens) || 0;
  return n;
}
function short(digest) { return digest ? digest.slice(0, 12) : '—'; }
function size(n) { return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : n >= 1024 ? `${Math.round(n / 1024)} KB` : `${n} B`; }
function badge(status) {
  return h('span', { class: `badge s-${status}` }, String(status).replace('_', ' '));
}
// Replaces an element's children, leaving out the absent ones.
function fill(el, ...kids) {
  el.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false));
}
function toast(text) {
  const t = document.getElementById('toast');
  t.textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.textContent = ''; }, 4000);
}
function text(value) {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}
// A JSON-text argument, pretty when it parses.
function prettyArgs(s) {
  try { return JSON.stringify(JSON.parse(s), null, 2); } catch { return String(s); }
}
// A <pre> of a value, clipped to CLIP characters with a button for the rest.
function doc(value, label) {
  const full = text(value);
  const pre = h('pre', { tabindex: 0, 'aria-label': label || 'value' });
  if (full.length <= CLIP) { pre.textContent = full; return pre; }
  pre.textContent = full.slice(0, CLIP);
  const more = h('button', {
    type: 'button', class: 'quiet',
    onclick: () => { pre.textContent = full; more.remove(); },
  }, `Show all (${size(full.length)}; ${size(CLIP)} shown)`);
  return h('div', {}, pre, more);
}

// ---------- the API ----------

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function headers(extra) {
  const hd = { accept: 'application/json', ...extra };
  if (token) hd.authorization = `Bearer ${token}`;
  return hd;
}

async function api(method, path, body, signal) {
  const init = { method, headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  const r = await fetch(path, init);
  const t = await r.text();
  let json = null;
  try { json = t ? JSON.parse(t) : null; } catch { json = null; }
  if (r.status === 401) { signOut('Your token was refused; sign in again.'); throw new ApiError(401, json); }
  if (!r.ok) throw new ApiError(r.status, json);
  return json;
}

// Reads Server-Sent Events from `path` with fetch, reconnecting with
// Last-Event-ID until `signal` aborts or `done()` says the stream is over.
async function follow(path, onEvent, signal, done, onOpen) {
  let last = null;
  while (!signal.aborted) {
    try {
      const extra = last === null ? {} : { 'last-event-id': String(last) };
      const r = await fetch(path, { headers: headers({ accept: 'text/event-stream', ...extra }), signal });
      if (r.status === 401) { signOut('Your token was refused; sign in again.'); return; }
      if (r.status === 404) return;
      if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
      if (onOpen) onOpen();
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        buf += value;
        let cut;
        while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + (buf[cut] === '\r' ? 4 : 2));
          let id = null, type = 'message', data = '';
          for (const line of block.split(/\r?\n/)) {
            if (line.startsWith('id:')) id = line.slice(3).trim();
            else if (line.startsWith('event:')) type = line.slice(6).trim();
            else if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(5).replace(/^ /, '');
          }
          if (!data) continue;
          if (id !== null) last = id;
          let parsed;
          try { parsed = JSON.parse(data); } catch { continue; }
          onEvent(type, parsed);
        }
      }
      if (done()) return;
    } catch (e) {
      if (signal.aborted) return;
    }
    await new Promise((ok) => setTimeout(ok, 1000));
  }
}

// Calls `fn` now and every `ms` until the view changes.
function every(ms, signal, fn) {
  let timer = null;
  const tick = async () => {
    if (signal.aborted) return;
    try { await fn(); } catch (e) { if (!(e instanceof ApiError && e.status === 401)) console.warn(e); }
    if (!signal.aborted) timer = setTimeout(tick, ms);
  };
  signal.addEventListener('abort', () => clearTimeout(timer));
  tick();
}

// ---------- sign-in and navigation ----------

function signOut(message) {
  token = '';
  sessionStorage.removeItem(TOKEN_KEY);
  showSignIn(message);
}

function showSignIn(message) {
  if (view) view.abort();
  view = new AbortController();
  document.getElementById('nav').hidden = true;
  document.getElementById('sign-out').hidden = true;
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'current-password', required: true, minlength: 16 });
  const error = h('p', { id: 'sign-in-error', class: 'alert', role: 'alert' }, message || '');
  const form = h('form', {
    class: 'panel signin', 'aria-labelledby': 'sign-in-title',
    onsubmit: async (e) => {
      e.preventDefault();
      token = input.value.trim();
      error.textContent = '';
      try {
        const r = await fetch('/v1/workflows', { headers: headers() });
        if (r.status === 401) {
          token = '';
          error.textContent = 'That token was refused.';
          input.select();
          return;
        }
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        sessionStorage.setItem(TOKEN_KEY, token);
        signedIn();
      } catch (err) {
        error.textContent = `The server did not answer: ${err.message}`;
      }
    },
  },
  h('h1', { id: 'sign-in-title' }, 'Sign in'),
  h('p', { class: 'muted' }, 'This server scopes everything to an account. Paste your bearer token; it is kept in this tab only.'),
  h('label', { for: 'token' }, 'Bearer token', input),
  h('p', {}, h('button', { type: 'submit' }, 'Sign in')),
  error);
  fill(main, form);
  input.focus();
}

function signedIn() {
  document.getElementById('nav').hidden = false;
  document.getElementById('sign-out').hidden = !token;
  if (!location.hash || location.hash === '#' || location.hash === '#/') location.hash = '#/runs';
  else route();
}

function route() {
  if (view) view.abort();
  view = new AbortController();
  const signal = view.signal;
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const section = parts[0] || 'runs';
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.section === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  fill(main);
  if (section === 'runs' && parts[1]) runView(parts[1], signal);
  else if (section === 'approvals') approvalsView(signal);
  else if (section === 'plugins') pluginsView(signal);
  else runsView(signal);
  main.focus({ preventScroll: true });
}

async function boot() {
  document.getElementById('sign-out').addEventListener('click', () => signOut('Signed out.'));
  window.addEventListener('hashchange', () => { if (!document.getElementById('nav').hidden) route(); });
  const r = await fetch('/v1/workflows', { headers: headers() });
  if (r.status === 401) { token = ''; sessionStorage.removeItem(TOKEN_KEY); showSignIn(''); return; }
  signedIn();
  pollApprovalCount();
}

// The count of waiting approvals in the navigation, kept fresh.
function pollApprovalCount() {
  const tick = async () => {
    if (!document.getElementById('nav').hidden) {
      try {
        const r = await api('GET', '/v1/approvals');
        const n = r.approvals.length;
        document.getElementById('approval-count').textContent = n ? String(n) : '';
      } catch { /* shown by the views */ }
    }
    setTimeout(tick, 3000);
  };
  tick();
}

// ---------- runs ----------

function runsView(signal) {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const status = h('select', { id: 'filter-status' }, h('option', { value: '' }, 'any'),
    STATUSES.map((s) => h('option', { value: s }, s.replace('_', ' '))));
  status.value = params.get('status') || '';
  const workflow = h('select', { id: 'filter-workflow' }, h('option', { value: '' }, 'any'));
  const body = h('tbody');
  const more = h('button', { type: 'button', class: 'quiet', hidden: true }, 'Show more');
  const info = h('p', { class: 'muted', 'aria-live': 'polite' });
  let limit = 50;
  let wanted = params.get('workflow') || ''; // the workflow filter, before its options load
  more.addEventListener('click', () => { limit = Math.min(limit + 100, 500); refresh(); });

  main.append(
    h('h1', {}, 'Runs'),
    startForm(signal),
    h('div', { class: 'row', role: 'search' },
      h('label', {}, 'Status', status), h('label', {}, 'Workflow', workflow)),
    h('div', { class: 'scroll' }, h('table', { id: 'runs' },
      h('caption', { class: 'skip' }, 'Runs, newest first'),
      h('thead', {}, h('tr', {},
        h('th', {}, 'Status'), h('th', {}, 'Run'), h('th', {}, 'Workflow'), h('th', {}, 'Started'),
        h('th', { class: 'num' }, 'Duration'), h('th', { class: 'num' }, 'Tokens'),
        h('th', { class: 'hide-narrow' }, 'Last agent'))),
      body)),
    info, more);

  const onFilter = () => {
    const q = new URLSearchParams();
    if (status.value) q.set('status', status.value);
    if (workflow.value) q.set('workflow', workflow.value);
    wanted = workflow.value;
    history.replaceState(null, '', `#/runs${q.toString() ? `?${q}` : ''}`);
    rows.clear(); fill(body); refresh();
  };
  status.addEventListener('change', onFilter);
  workflow.addEventListener('change', onFilter);
  api('GET', '/v1/workflows', undefined, signal).then((w) => {
    for (const wf of w.workflows) workflow.append(h('option', { value: wf.key }, wf.key));
    workflow.value = wanted;
  }).catch(() => {});

  const rows = new Map();
  async function refresh() {
    const q = new URLSearchParams({ limit: String(limit) });
    if (status.value) q.set('status', status.value);
    if (wanted) q.set('workflow', wanted);
    const list = await api('GET', `/v1/runs?${q}`, undefined, signal);
    const now = Date.now();
    const seen = new Set();
    let prev = null;
    for (const run of list.runs) {
      seen.add(run.run_id);
      const key = JSON.stringify([run.status, run.updated_at_ms, run.last_agent, run.usage]);
      let row = rows.get(run.run_id);
      if (!row) {
        row = { tr: h('tr', { 'data-run': run.run_id, 'data-status': run.status }), key: null };
        rows.set(run.run_id, row);
      }
      if (row.key !== key || !TERMINAL.has(run.status)) {
        const end = TERMINAL.has(run.status) ? run.updated_at_ms : now;
        const cells = [
          h('td', {}, badge(run.status)),
          h('td', {}, h('a', { href: `#/runs/${encodeURIComponent(run.run_id)}`, class: 'mono' }, run.run_id)),
          h('td', {}, run.workflow),
          h('td', {}, when(run.created_at_ms)),
          h('td', { class: 'num' }, duration(end - run.created_at_ms)),
          h('td', { class: 'num' }, tokens(run.usage).toLocaleString()),
          h('td', { class: 'hide-narrow' }, run.last_agent || '—'),
        ];
        // Keep the focused link when the row is rebuilt.
        const focused = row.tr.contains(document.activeElement);
        fill(row.tr, ...cells);
        row.tr.dataset.status = run.status;
        if (focused) cells[1].firstChild.focus();
        if (row.key && row.key !== key) { row.tr.classList.remove('flash'); void row.tr.offsetWidth; row.tr.classList.add('flash'); }
        row.key = key;
      }
      // Newest first: put the row after the previous one.
      const want = prev ? prev.nextSibling : body.firstChild;
      if (want !== row.tr) body.insertBefore(row.tr, want);
      prev = row.tr;
    }
    for (const [id, row] of rows) if (!seen.has(id)) { row.tr.remove(); rows.delete(id); }
    info.textContent = list.runs.length ? `${list.runs.length} run(s), newest first; updating live.` : 'No runs yet.';
    more.hidden = !list.next_cursor || limit >= 500;
  }
  every(1500, signal, refresh);
}

function startForm(signal) {
  const select = h('select', { id: 'start-workflow', required: true });
  const input = h('textarea', { id: 'start-input', rows: 3, placeholder: 'Text, or a JSON value' });
  const kind = h('select', { id: 'start-kind' }, h('option', { value: 'text' }, 'text'), h('option', { value: 'json' }, 'JSON'));
  const error = h('p', { class: 'alert', role: 'alert' });
  const form = h('form', {
    class: 'panel', id: 'start', 'aria-label': 'Start a run',
    onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = '';
      let value = input.value;
      if (kind.value === 'json') {
        try { value = JSON.parse(input.value); } catch (err) { error.textContent = `The input is not JSON: ${err.message}`; return; }
      }
      try {
        const r = await api('POST', '/v1/runs', { workflow: select.value, input: value });
        location.hash = `#/runs/${encodeURIComponent(r.run_id)}`;
      } catch (err) {
        const paths = (err.problem && err.problem.errors) || [];
        error.textContent = [err.message, ...paths.map((p) => `${p.path}: ${p.message}`)].join(' — ');
      }
    },
  },
  h('h2', { style: null }, 'Start a run'),
  h('div', { class: 'row' },
    h('label', {}, 'Workflow', select),
    h('label', { class: 'grow' }, 'Input', input),
    h('label', {}, 'Input is', kind),
    h('button', { type: 'submit' }, 'Start run')),
  error);
  api('GET', '/v1/workflows', undefined, signal).then((w) => {
    for (const wf of w.workflows) select.append(h('option', { value: wf.key }, wf.name && wf.name !== wf.key ? `${wf.key} — ${wf.name}` : wf.key));
  }).catch(() => {});
  return form;
}

// ---------- one run ----------

// What the page knows of a run, built from its events and GET /v1/runs/{id}.
function newModel() {
  return { stages: new Map(), run: null, events: 0, finished: false, started: null, made: 0 };
}

function stageOf(m, name) {
  let s = m.stages.get(name);
  if (!s) {
    s = { name, mode: 'sequential', count: null, steps: new Map(), status: 'running', started: null, output: undefined, order: null, made: m.made++ };
    m.stages.set(name, s);
  }
  return s;
}

function stepOf(m, stage, index) {
  const s = stageOf(m, stage);
  let st = s.steps.get(index);
  if (!st) {
    st = { stage, index, name: null, agent: null, branch: null, status: 'started', started: null, elapsed: null,
      turns: 0, usage: null, output: undefined, error: null, events: [], dropped: 0, digests: {} };
    s.steps.set(index, st);
  }
  return st;
}

function apply(m, type, e) {
  m.events += 1;
  const at = e.timestamp ? Date.parse(e.timestamp) : null;
  const d = e.data || {};
  if (type === 'run.started' && !m.started) m.started = at;
  if (type === 'stage.started' && e.stage) {
    const s = stageOf(m, e.stage);
    s.mode = d.mode || s.mode; s.count = d.steps ?? s.count; s.started = s.started || at; s.status = 'running';
    if (s.order === null) s.order = m.events;
  }
  if (type === 'stage.completed' && e.stage) { const s = stageOf(m, e.stage); s.status = 'completed'; s.output = d.output; }
  if (FINAL.has(type)) m.finished = true;
  if (!e.stage || e.step_index === undefined) return;
  const st = stepOf(m, e.stage, e.step_index);
  st.name = e.step || st.name; st.agent = st.agent || e.agent || null;
  if (e.branch_index !== undefined) st.branch = e.branch_index;
  if (st.events.length < STEP_EVENTS) st.events.push({ type, at, data: e.data, agent: e.agent }); else st.dropped += 1;
  switch (type) {
    case 'step.started': st.started = at; st.status = 'running'; break;
    case 'step.skipped': st.status = 'skipped'; st.error = d.reason || null; break;
    case 'llm.response': if (!e.tool_call_id) st.turns = Math.max(st.turns, d.turn || 0); break;
    case 'approval.requested': st.status = 'waiting'; break;
    case 'approval.resolved': st.status = 'running'; break;
    case 'tool.result': if (d.plugin_digest) st.digests[`tool ${d.tool}`] = d.plugin_digest; break;
    case 'step.completed':
      st.status = 'completed'; st.output = d.output; st.turns = d.turns ?? st.turns; st.usage = d.usage || st.usage;
      st.elapsed = d.elapsed_ms ?? st.elapsed; if (e.agent) st.agent = e.agent; break;
    case 'step.failed': st.status = 'failed'; st.error = d.error || 'failed'; break;
    default: break;
  }
}

// Folds the recorded steps and plugin builds of GET /v1/runs/{id} in.
function merge(m, run) {
  m.run = run;
  mergeServed(m, run);
  for (const s of run.steps) {
    const st = stepOf(m, s.stage, s.index);
    st.status = s.status === 'completed' || s.status === 'skipped' || s.status === 'failed' ? s.status : st.status;
    if (s.output !== null && s.output !== undefined) st.output = s.output;
    st.error = s.error || st.error; st.turns = s.turns || st.turns; st.usage = s.usage || st.usage;
    st.agent = s.agent || st.agent;
    for (const [plugin, digest] of Object.entries(s.plugins || {})) {
      const known = Object.keys(st.digests).some((label) => label === plugin || label.endsWith(` ${plugin}`));
      if (!known) st.digests[plugin] = digest;
    }
  }
}

function mergeServed(m, run) {
  for (const sv of run.served) {
    // `<stage>/<index>/<hook…>` or `<stage>/reduce`; stage names may hold '/'.
    const reduce = sv.key.match(/^(.*)\/reduce$/);
    if (reduce) { stageOf(m, reduce[1]).reducer = sv; continue; }
    const hook = sv.key.match(/^(.*)\/(\d+)\/(guard|map_input)$/);
    if (hook) { stepOf(m, hook[1], Number(hook[2])).digests[`${hook[3]} ${sv.plugin}`] = sv.digest; continue; }
    const tool = sv.key.match(/^(.*)\/(\d+)\/t\d+\/tool\//);
    if (tool) { stepOf(m, tool[1], Number(tool[2])).digests[`tool ${sv.plugin}`] = sv.digest; }
  }
}

function stageOrder(m) {
  return [...m.stages.values()].sort((a, b) => (a.order ?? 1e9 + a.made) - (b.order ?? 1e9 + b.made));
}

// A step's input, derived from the data flow of docs/ENGINE.md (the API
// records each step's result, not its input): the previous step's output
// in a sequential stage (a skipped step passes its input on), else the
// stage's input — the previous stage's output, or the run's input.
function inputOf(m, stageName, index) {
  const stages = stageOrder(m);
  const at = stages.findIndex((s) => s.name === stageName);
  const stage = stages[at];
  if (stage && stage.mode !== 'parallel' && index > 0) {
    const prev = stage.steps.get(index - 1);
    if (!prev) return null;
    if (prev.status === 'skipped') return inputOf(m, stageName, index - 1);
    return prev.output === undefined ? null : { value: prev.output, from: `the output of step ${prev.name || prev.index}` };
  }
  if (at <= 0) return m.run ? { value: m.run.input, from: 'the run\'s input' } : null;
  const before = stages[at - 1];
  return before.output === undefined ? null : { value: before.output, from: `the output of stage ${before.name}` };
}

function runView(id, signal) {
  const m = newModel();
  const head = h('div');
  const approvals = h('section', { id: 'run-approvals', 'aria-label': 'Waiting approvals' });
  const timeline = h('section', { class: 'timeline', id: 'timeline', 'aria-label': 'Timeline' });
  const detail = h('section', { id: 'step-detail', 'aria-live': 'polite' });
  const outcome = h('section', { id: 'outcome' });
  const replay = h('section', { id: 'replay' });
  main.append(
    h('p', {}, h('a', { href: '#/runs' }, '← Runs')),
    head, approvals, h('h2', {}, 'Timeline'), timeline, detail, outcome, replay);
  const empty = h('p', { class: 'muted' }, 'No stage has started yet.');
  timeline.append(empty);
  const cards = new Map(); // `${stage}/${index}` → its button
  const stageEls = new Map();
  let selected = null;
  let drawn = false;
  const changed = new Set(); // stages and steps a replay changed: `stage` or `stage/index`

  function draw() {
    drawn = false;
    const run = m.run;
    if (run) {
      const end = TERMINAL.has(run.status) ? run.updated_at_ms : Date.now();
      const actions = [];
      if (!TERMINAL.has(run.status)) actions.push(h('button', { type: 'button', class: 'danger', id: 'cancel', onclick: cancel }, 'Cancel run'));
      else actions.push(h('button', { type: 'button', id: 'replay-run', onclick: doReplay }, 'Replay with current plugins'));
      fill(head, 
        h('h1', {}, 'Run ', h('span', { class: 'mono' }, run.run_id), ' ', h('span', { id: 'run-status' }, badge(run.status))),
        h('dl', { class: 'facts' },
          h('div', {}, h('dt', {}, 'Workflow'), h('dd', {}, run.workflow)),
          h('div', {}, h('dt', {}, 'Started'), h('dd', {}, when(run.created_at_ms))),
          h('div', {}, h('dt', {}, 'Duration'), h('dd', {}, duration(end - run.created_at_ms))),
          h('div', {}, h('dt', {}, 'Tokens'), h('dd', {}, tokens(run.usage).toLocaleString())),
          h('div', {}, h('dt', {}, 'Last agent'), h('dd', {}, run.last_agent || '—')),
          run.session_id ? h('div', {}, h('dt', {}, 'Session'), h('dd', {}, run.session_id)) : null),
        h('div', { class: 'row', style: null }, actions));
    }
    // Stages in the order they started (a stage known only from the
    // journal, before its events arrive, goes after them).
    const stages = stageOrder(m);
    let prev = empty;
    for (const s of stages) {
      let el = stageEls.get(s.name);
      if (!el) {
        el = { root: h('section', { class: 'stage', 'data-stage': s.name }), head: h('div', { class: 'stage-head' }), steps: h('div', { class: 'steps' }) };
        el.root.append(el.head, el.steps);
        stageEls.set(s.name, el);
      }
      if (el.root.previousElementSibling !== prev || el.root.parentNode !== timeline) prev.after(el.root);
      prev = el.root;
      el.root.classList.toggle('parallel', s.mode === 'parallel');
      fill(el.head, 
        h('h3', {}, s.name),
        h('span', { class: 'muted' }, s.mode === 'parallel' ? `parallel · ${s.count ?? s.steps.size} branches` : `sequential · ${s.count ?? s.steps.size} step(s)`),
        s.status === 'completed' ? badge('completed') : null,
        changed.has(s.name) ? h('span', { class: 'badge s-waiting' }, 'changed in replay') : null,
        s.reducer ? h('span', { class: 'digest', title: s.reducer.digest }, `reducer ${s.reducer.plugin} ${short(s.reducer.digest)}`) : null);
      const ordered = [...s.steps.values()].sort((a, b) => a.index - b.index);
      for (const st of ordered) {
        const key = `${st.stage}/${st.index}`;
        let card = cards.get(key);
        if (!card) {
          card = { button: h('button', { type: 'button', class: 'step', 'aria-expanded': 'false', 'data-step': key, onclick: () => select(key) }) };
          cards.set(key, card);
        }
        if (card.button.parentNode !== el.steps || card.button.nextSibling) el.steps.append(card.button);
        const elapsed = st.elapsed ?? (st.status === 'running' || st.status === 'waiting' ? (st.started ? Date.now() - st.started : null) : null);
        card.button.className = `step st-${st.status}${changed.has(key) ? ' replay-changed' : ''}`;
        fill(card.button, 
          h('span', { class: 'step-name' }, h('span', {}, st.name || st.agent || `step ${st.index}`), badge(st.status)),
          h('span', { class: 'step-meta' },
            h('span', {}, duration(elapsed)),
            h('span', {}, `${st.turns} turn(s)`),
            h('span', {}, `${tokens(st.usage).toLocaleString()} tokens`),
            st.agent && st.agent !== st.name ? h('span', {}, `agent ${st.agent}`) : null),
          ...Object.entries(st.digests).map(([hook, digest]) => h('span', { class: 'digest', title: digest }, `${hook} ${short(digest)}`)));
      }
    }
    empty.hidden = m.stages.size > 0;
    if (selected) showDetail(selected);
    // Drawn once per state of the run, so a "Show all" stays open.
    if (run && TERMINAL.has(run.status) && outcome.dataset.sig !== `${run.status}/${run.updated_at_ms}`) {
      outcome.dataset.sig = `${run.status}/${run.updated_at_ms}`;
      const usage = Object.entries(run.usage || {});
      fill(outcome, 
        h('h2', {}, 'Final output'),
        run.output !== null && run.output !== undefined ? doc(run.output, 'final output') : h('p', { class: 'muted' }, run.error ? '' : 'No output.'),
        run.error ? h('p', { class: 'alert' }, run.error) : null,
        h('h2', {}, 'Usage by model'),
        usage.length ? h('div', { class: 'scroll' }, h('table', { id: 'usage' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Model'), h('th', { class: 'num' }, 'Input'), h('th', { class: 'num' }, 'Output'), h('th', { class: 'num' }, 'Total'))),
          h('tbody', {}, usage.map(([model, u]) => h('tr', {}, h('td', {}, model),
            h('td', { class: 'num' }, (u.input_tokens || 0).toLocaleString()),
            h('td', { class: 'num' }, (u.output_tokens || 0).toLocaleString()),
            h('td', { class: 'num' }, (u.total_tokens || 0).toLocaleString())))))) : h('p', { class: 'muted' }, 'No model calls.'));
    }
  }
  function redraw() { if (!drawn) { drawn = true; requestAnimationFrame(draw); } }

  function select(key) {
    selected = selected === key ? null : key;
    for (const [k, c] of cards) c.button.setAttribute('aria-expanded', String(k === selected));
    if (selected) showDetail(selected); else fill(detail);
  }

  function showDetail(key) {
    const [stage, index] = [key.slice(0, key.lastIndexOf('/')), Number(key.slice(key.lastIndexOf('/') + 1))];
    const st = m.stages.get(stage)?.steps.get(index);
    if (!st) return;
    const sig = JSON.stringify([st.status, st.events.length, st.output === undefined, Object.keys(st.digests).length]);
    if (detail.dataset.key === key && detail.dataset.sig === sig) return;
    detail.dataset.key = key; detail.dataset.sig = sig;
    const first = st.events.find((e) => e.type === 'step.started' || e.type === 'llm.request');
    const input = inputOf(m, stage, index);
    fill(detail, h('div', { class: 'panel detail' },
      h('h2', {}, `${stage} · ${st.name || st.agent || `step ${index}`}`),
      h('dl', { class: 'facts' },
        h('div', {}, h('dt', {}, 'State'), h('dd', {}, badge(st.status))),
        h('div', {}, h('dt', {}, 'Started'), h('dd', {}, when(st.started || (first && first.at)))),
        h('div', {}, h('dt', {}, 'Turns'), h('dd', {}, String(st.turns))),
        h('div', {}, h('dt', {}, 'Tokens'), h('dd', {}, tokens(st.usage).toLocaleString()))),
      h('h3', {}, 'Input'),
      input ? h('p', { class: 'muted' }, `From ${input.from}`,
        Object.keys(st.digests).some((k) => k.startsWith('map_input')) ? ', then shaped by its input mapper (whose result the API does not serve).' : '.') : null,
      input ? doc(input.value, 'step input') : h('p', { class: 'muted' }, 'Not known yet.'),
      h('h3', {}, 'Output'),
      st.output === undefined ? h('p', { class: 'muted' }, 'Not yet.') : doc(st.output, 'step output'),
      st.error ? h('div', {}, h('h3', {}, st.status === 'skipped' ? 'Why skipped' : 'Error'), h('pre', { class: 'alert' }, st.error)) : null,
      h('h3', {}, 'Plugin builds'),
      Object.keys(st.digests).length
        ? h('ul', {}, Object.entries(st.digests).map(([hook, d]) => h('li', {}, `${hook}: `, h('code', {}, d))))
        : h('p', { class: 'muted' }, 'No plugin served this step.'),
      h('h3', {}, `Events (${st.events.length + st.dropped})`),
      h('ol', { class: 'events' }, st.events.map((ev) => h('li', {},
        `${ev.at ? new Date(ev.at).toLocaleTimeString() : ''} ${ev.type} `,
        ev.data ? JSON.stringify(ev.data).slice(0, 400) : ''))),
      st.dropped ? h('p', { class: 'muted' }, `${st.dropped} later event(s) not shown.`) : null));
  }

  async function load() {
    const run = await api('GET', `/v1/runs/${encodeURIComponent(id)}`, undefined, signal);
    merge(m, run);
    redraw();
    await loadApprovals();
  }
  let loading = null;
  function reload() { // at most one GET in flight, one queued
    if (loading) { loading.again = true; return; }
    loading = { again: false };
    load().catch(showError).finally(() => { const again = loading.again; loading = null; if (again) reload(); });
  }
  function showError(e) {
    if (e instanceof ApiError && e.status === 404) fill(main, h('h1', {}, 'No such run'), h('p', {}, h('a', { href: '#/runs' }, '← Runs')));
    else if (!(e instanceof ApiError && e.status === 401) && !signal.aborted) toast(e.message);
  }

  async function loadApprovals() {
    const all = await api('GET', '/v1/approvals', undefined, signal);
    const mine = all.approvals.filter((a) => a.run_id === id);
    fill(approvals, ...(mine.length ? [h('h2', {}, 'Waiting for approval'), ...mine.map((a) => approvalCard(a, reload))] : []));
  }

  async function cancel() {
    try { await api('POST', `/v1/runs/${encodeURIComponent(id)}/cancel`); toast('Cancelled.'); reload(); } catch (e) { toast(e.message); }
  }

  async function doReplay() {
    fill(replay, h('p', { class: 'muted' }, 'Replaying…'));
    try {
      const report = await api('POST', `/v1/runs/${encodeURIComponent(id)}/replay`);
      fill(replay, replayReport(report));
      for (const k of report.changed_hooks || []) changed.add(k.step_index === null || k.step_index === undefined ? k.stage : `${k.stage}/${k.step_index}`);
      for (const c of report.changed_steps || []) changed.add(`${c.stage}/${c.step_index}`);
      redraw();
      replay.scrollIntoView({ block: 'start' });
      replay.querySelector('h2')?.focus();
    } catch (e) {
      fill(replay, h('p', { class: 'alert', role: 'alert' }, `Replay failed: ${e.message}`));
    }
  }

  reload();
  // Live: every event updates the timeline; those that change what the
  // journal records reload the run.
  follow(`/v1/runs/${encodeURIComponent(id)}/events`, (type, e) => {
    apply(m, type, e);
    redraw();
    if (type.startsWith('approval.') || type.startsWith('run.') || type === 'step.completed' || type === 'step.failed' || type === 'stage.completed') reload();
  }, signal, () => m.finished);
  // Elapsed times of running steps tick, and a run decided elsewhere shows.
  every(2000, signal, async () => { if (m.run && !TERMINAL.has(m.run.status)) { redraw(); if (m.run.status === 'waiting_approval' || m.run.status === 'queued') reload(); } });
}

function approvalCard(a, after) {
  const reason = h('input', { type: 'text', id: `reason-${a.call_id}`, placeholder: 'Reason (sent to the model)' });
  const decide = async (decision) => {
    try {
      const body = { decision };
      if (decision === 'reject') body.reason = reason.value || 'rejected in the console';
      const r = await api('POST', `/v1/runs/${encodeURIComponent(a.run_id)}/approvals/${encodeURIComponent(a.call_id)}`, body);
      toast(`${decision === 'approve' ? 'Approved' : 'Rejected'}${r.resumed ? '; the run continues' : ''}.`);
      after();
    } catch (e) { toast(e.message); }
  };
  return h('article', { class: 'panel approval', 'data-call': a.call_id, 'aria-label': `Approval of ${a.tool}` },
    h('h3', {}, `${a.tool} `, h('span', { class: 'muted' }, `call ${a.call_id}`)),
    h('dl', { class: 'facts' },
      h('div', {}, h('dt', {}, 'Run'), h('dd', {}, h('a', { href: `#/runs/${encodeURIComponent(a.run_id)}`, class: 'mono' }, a.run_id))),
      a.agent ? h('div', {}, h('dt', {}, 'Agent'), h('dd', {}, a.agent)) : null,
      a.stage ? h('div', {}, h('dt', {}, 'Stage'), h('dd', {}, `${a.stage}${a.step ? ` · ${a.step}` : ''}`)) : null,
      h('div', {}, h('dt', {}, 'Asked'), h('dd', {}, when(a.requested_at_ms)))),
    h('h4', {}, 'Arguments'),
    doc(prettyArgs(a.arguments), 'arguments'),
    h('div', { class: 'row' },
      h('button', { type: 'button', onclick: () => decide('approve') }, 'Approve'),
      h('label', { class: 'grow' }, 'Reason', reason),
      h('button', { type: 'button', class: 'danger', onclick: () => decide('reject') }, 'Reject')));
}

function replayReport(r) {
  const steps = r.changed_steps || [];
  const hooks = r.changed_hooks || [];
  return h('div', { class: 'panel', id: 'replay-report' },
    h('h2', { tabindex: -1 }, 'Replay report'),
    h('p', {}, steps.length || hooks.length
      ? `${steps.length} step(s) and ${hooks.length} hook(s) changed with the current plugins; zero model calls.`
      : 'Nothing changed: the current plugins give the recorded results.'),
    steps.length || hooks.length ? h('p', { id: 'replay-changed' }, 'Changed: ', [
      ...steps.map((c) => `${c.stage} · step ${c.step_index} (${c.agent})`),
      ...hooks.map((k) => `${k.stage}${k.step_index === null || k.step_index === undefined ? '' : ` · step ${k.step_index}`} · ${k.kind} ${k.plugin}`),
    ].join('; '), ' (marked in the timeline above).') : null,
    r.divergence ? h('p', { class: 'alert' }, `Diverged at ${r.divergence.stage} · ${r.divergence.step}: ${r.divergence.message}`) : null,
    steps.length ? h('h3', {}, 'Changed steps') : null,
    ...steps.map((s) => h('article', { class: 'panel changed', 'data-changed-step': `${s.stage}/${s.step_index}` },
      h('h4', {}, `${s.stage} · step ${s.step_index} (${s.agent})`),
      sideBySide(s.before, s.after))),
    (r.diverged_steps || []).length ? h('p', {}, 'Steps whose recorded results no longer apply: ',
      r.diverged_steps.map((d) => `${d.stage} · ${d.step}`).join(', ')) : null,
    hooks.length ? h('h3', {}, 'Changed hooks (reducers, guards, input mappers, guardrails)') : null,
    ...hooks.map((k) => h('article', { class: 'panel changed', 'data-changed-hook': k.key },
      h('h4', {}, `${k.key} `, h('span', { class: 'muted' }, `${k.kind} · ${k.plugin}`)),
      sideBySide(k.before, k.after))),
    h('h3', {}, 'Final output'),
    r.output_changed === null ? h('p', { class: 'muted' }, 'Unknown: the replay stopped where it diverged (no model call).') : null,
    sideBySide(r.original_output, r.output, 'Recorded', 'Now'));
}

function sideBySide(before, after, left = 'Before', right = 'After') {
  return h('div', { class: 'sbs' },
    h('div', {}, h('h5', {}, left), doc(before, left)),
    h('div', {}, h('h5', {}, right), doc(after, right)));
}

// ---------- approvals ----------

function approvalsView(signal) {
  const list = h('div', { id: 'approvals' });
  main.append(h('h1', {}, 'Approvals'), h('p', { class: 'muted' }, 'Tool calls of your runs waiting for a decision; updating live.'), list);
  let last = '';
  const refresh = async () => {
    const r = await api('GET', '/v1/approvals', undefined, signal);
    const sig = JSON.stringify(r.approvals.map((a) => a.key));
    if (sig === last) return;
    last = sig;
    fill(list, ...(r.approvals.length ? r.approvals.map((a) => approvalCard(a, () => { last = ''; refresh(); })) : [h('p', {}, 'Nothing waits.')]));
  };
  every(2000, signal, refresh);
}

// ---------- plugins ----------

function pluginsView(signal) {
  const body = h('tbody');
  const log = h('ol', { id: 'reloads', class: 'events', 'aria-live': 'polite' });
  main.append(h('h1', {}, 'Plugins'),
    h('div', { class: 'scroll' }, h('table', { id: 'plugins' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Plugin'), h('th', {}, 'Kinds'), h('th', {}, 'Entries'), h('th', {}, 'Digest'),
        h('th', { class: 'hide-narrow num' }, 'Size'), h('th', {}, 'Loaded'), h('th', {}, 'Last reload error'))),
      body)),
    h('h2', {}, 'Reloads'), h('p', { class: 'muted' }, 'As the server swaps builds in, while this page is open.'), log);
  let flash = null;
  const refresh = async () => {
    const r = await api('GET', '/v1/plugins', undefined, signal);
    fill(body, ...r.plugins.map((p) => h('tr', { 'data-plugin': p.name, class: p.name === flash ? 'flash' : null },
      h('td', {}, h('strong', {}, p.name)),
      h('td', {}, p.kinds.join(', ')),
      h('td', {}, h('ul', {}, p.entries.map((e) => h('li', { title: e.description }, `${e.name} (${e.kind})`)))),
      h('td', { class: 'digest', title: p.digest || '' }, p.digest ? h('code', { 'data-digest': p.digest }, short(p.digest)) : '—'),
      h('td', { class: 'hide-narrow num' }, p.size ? size(p.size) : '—'),
      h('td', {}, when(p.loaded_at_ms)),
      h('td', {}, p.last_reload_error ? h('span', { class: 'alert' }, `${when(p.last_reload_error_at_ms)}: ${p.last_reload_error}`) : '—'))));
    flash = null;
  };
  refresh().catch(() => {});
  follow('/v1/plugins/events', (type, e) => {
    const d = e.data || {};
    flash = d.plugin;
    log.prepend(h('li', { 'data-event': type },
      `${when(e.timestamp ? Date.parse(e.timestamp) : Date.now())} ${type} ${d.plugin || ''} `,
      type === 'plugin.reloaded' ? `${short(d.old_digest)} → ${short(d.new_digest || d.digest)}` : String(d.error || '')));
    refresh().catch(() => {});
  }, signal, () => false, () => { log.dataset.live = 'true'; });
}

boot().catch((e) => { fill(main, h('p', { class: 'alert' }, `The server did not answer: ${e.message}`)); });
