// One run (docs/CONSOLE.md): its timeline built from the run's events
// and GET /v1/runs/{id}, live; its approvals; cancel; replay and its report.

import {
  ApiError, FINAL, TERMINAL, api, badge, doc, duration, every, fill, follow, h, main, prettyArgs,
  short, toast, tokens, when,
} from './lib.js';

const STEP_EVENTS = 400; // events kept per step in the page

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

export function runView(id, signal) {
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

export function approvalCard(a, after) {
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
