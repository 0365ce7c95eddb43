// The console of `host serve` (docs/CONSOLE.md): sign-in, navigation, the
// runs list, approvals and plugins; one run's view is in run.js. It uses
// only the public /v1 API.

import {
  STATUSES, TERMINAL, TOKEN_KEY, api, badge, duration, every, fill, follow, getToken, h,
  headers, main, onUnauthorized, setToken, short, size, tokens, when,
} from './lib.js';
import { approvalCard, runView } from './run.js';

let view = null; // AbortController of the view on screen

// ---------- sign-in and navigation ----------

function signOut(message) {
  setToken('');
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
      setToken(input.value.trim());
      error.textContent = '';
      try {
        const r = await fetch('/v1/workflows', { headers: headers() });
        if (r.status === 401) {
          setToken('');
          error.textContent = 'That token was refused.';
          input.select();
          return;
        }
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        sessionStorage.setItem(TOKEN_KEY, getToken());
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
  document.getElementById('sign-out').hidden = !getToken();
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
  onUnauthorized(() => signOut('Your token was refused; sign in again.'));
  document.getElementById('sign-out').addEventListener('click', () => signOut('Signed out.'));
  window.addEventListener('hashchange', () => { if (!document.getElementById('nav').hidden) route(); });
  const r = await fetch('/v1/workflows', { headers: headers() });
  if (r.status === 401) { setToken(''); sessionStorage.removeItem(TOKEN_KEY); showSignIn(''); return; }
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
