// What the console's modules share (docs/CONSOLE.md): building elements
// from text (never HTML), formatting, and the /v1 API — JSON requests and
// Server-Sent Events read with fetch (an EventSource cannot send the
// bearer token).

export const TOKEN_KEY = 'host.console.token';
export const CLIP = 64 * 1024; // characters of a JSON document shown before "Show all"
export const FINAL = new Set(['run.completed', 'run.failed', 'run.cancelled']);
export const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
export const STATUSES = ['queued', 'running', 'waiting_approval', 'completed', 'failed', 'cancelled'];

export const main = document.getElementById('main');
let token = sessionStorage.getItem(TOKEN_KEY) || '';
let unauthorized = () => {};
export function getToken() { return token; }
export function setToken(t) { token = t; }
// What to do when the server refuses the token (the console signs out).
export function onUnauthorized(fn) { unauthorized = fn; }

// ---------- small helpers ----------

export function h(tag, attrs, ...children) {
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
export function when(ms) { return ms ? fmtTime.format(new Date(ms)) : '—'; }
export function duration(ms) {
  if (ms === null || ms === undefined || ms < 0) return '—';
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
export function tokens(usage) {
  let n = 0;
  for (const u of Object.values(usage || {})) n += (u && u.total_tokens) || 0;
  return n;
}
export function short(digest) { return digest ? digest.slice(0, 12) : '—'; }
export function size(n) { return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : n >= 1024 ? `${Math.round(n / 1024)} KB` : `${n} B`; }
export function badge(status) {
  return h('span', { class: `badge s-${status}` }, String(status).replace('_', ' '));
}
// Replaces an element's children, leaving out the absent ones.
export function fill(el, ...kids) {
  el.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false));
}
export function toast(text) {
  const t = document.getElementById('toast');
  t.textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.textContent = ''; }, 4000);
}
export function text(value) {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}
// A JSON-text argument, pretty when it parses.
export function prettyArgs(s) {
  try { return JSON.stringify(JSON.parse(s), null, 2); } catch { return String(s); }
}
// A <pre> of a value, clipped to CLIP characters with a button for the rest.
export function doc(value, label) {
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

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function headers(extra) {
  const hd = { accept: 'application/json', ...extra };
  if (token) hd.authorization = `Bearer ${token}`;
  return hd;
}

export async function api(method, path, body, signal) {
  const init = { method, headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  const r = await fetch(path, init);
  const t = await r.text();
  let json = null;
  try { json = t ? JSON.parse(t) : null; } catch { json = null; }
  if (r.status === 401) { unauthorized(); throw new ApiError(401, json); }
  if (!r.ok) throw new ApiError(r.status, json);
  return json;
}

// Reads Server-Sent Events from `path` with fetch, reconnecting with
// Last-Event-ID until `signal` aborts or `done()` says the stream is over.
export async function follow(path, onEvent, signal, done, onOpen) {
  let last = null;
  while (!signal.aborted) {
    try {
      const extra = last === null ? {} : { 'last-event-id': String(last) };
      const r = await fetch(path, { headers: headers({ accept: 'text/event-stream', ...extra }), signal });
      if (r.status === 401) { unauthorized(); return; }
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
export function every(ms, signal, fn) {
  let timer = null;
  const tick = async () => {
    if (signal.aborted) return;
    try { await fn(); } catch (e) { if (!(e instanceof ApiError && e.status === 401)) console.warn(e); }
    if (!signal.aborted) timer = setTimeout(tick, ms);
  };
  signal.addEventListener('abort', () => clearTimeout(timer));
  tick();
}
