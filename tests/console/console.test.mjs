// The web console of `host serve` in Debian's Chromium, driven by
// playwright-core. Started by tests/it/console.rs, which runs the server
// (tokens, the mock model, workflows, a reducer to swap) and passes:
//   CONSOLE_URL, CONSOLE_TOKEN (account acme), CONSOLE_OTHER_TOKEN (globex),
//   CONSOLE_SHOTS (where every test saves its screenshot),
//   CONSOLE_DOC_SHOTS (optional: where the docs' four screenshots go),
//   RED_PLUGIN (the served reducer's file), REDUCER_V2 (the build to swap in),
//   CHROMIUM (the browser; /usr/bin/chromium by default).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through tests/it/console.rs`);
  return v;
};
const BASE = env('CONSOLE_URL');
const TOKEN = env('CONSOLE_TOKEN');
const OTHER = env('CONSOLE_OTHER_TOKEN');
const SHOTS = env('CONSOLE_SHOTS');
const DOC_SHOTS = process.env.CONSOLE_DOC_SHOTS || '';
const WAIT = 30_000;

let browser;
const runs = {}; // what one test leaves for the next: run ids by name

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // Playwright starts the browser with a fresh temporary --user-data-dir.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => { await browser?.close(); });

async function page(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light', ...options });
  const p = await context.newPage();
  const problems = [];
  p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  p.on('console', (m) => { if (m.type() === 'error' && !/status of 40[149]/.test(m.text())) problems.push(`console: ${m.text()}`); });
  p.problems = problems;
  return p;
}

async function shot(p, name, docName) {
  await p.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: false });
  if (DOC_SHOTS && docName) {
    fs.mkdirSync(DOC_SHOTS, { recursive: true });
    await p.screenshot({ path: path.join(DOC_SHOTS, `${docName}.png`), fullPage: false });
  }
}

async function signIn(p, token = TOKEN) {
  await p.goto(`${BASE}/`);
  await p.getByLabel('Bearer token').fill(token);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.locator('#runs').waitFor({ timeout: WAIT });
}

async function startRun(p, workflow, input, kind = 'text') {
  await p.goto(`${BASE}/#/runs`);
  await p.locator(`#start-workflow option[value="${workflow}"]`).waitFor({ state: 'attached', timeout: WAIT });
  await p.locator('#start-workflow').selectOption(workflow);
  await p.locator('#start-input').fill(input);
  await p.locator('#start-kind').selectOption(kind);
  await p.getByRole('button', { name: 'Start run' }).click();
  await p.waitForURL(/#\/runs\/[^/?]+$/, { timeout: WAIT });
  await p.locator('#run-status').waitFor({ timeout: WAIT });
  return decodeURIComponent(new URL(p.url()).hash.split('/')[2]);
}

const status = (p, s) => p.locator('#run-status', { hasText: s }).waitFor({ timeout: WAIT });

async function apiGet(pathname, token = TOKEN) {
  const r = await fetch(`${BASE}${pathname}`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200, `${pathname}: ${r.status}`);
  return r.json();
}

test('a wrong token is refused', async () => {
  const p = await page();
  await p.goto(`${BASE}/`);
  await p.getByLabel('Bearer token').fill('token-of-nobody-0123456789');
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.locator('#sign-in-error', { hasText: 'refused' }).waitFor({ timeout: WAIT });
  assert.equal(await p.locator('#nav').isHidden(), true, 'no navigation without a valid token');
  assert.equal(await p.locator('#runs').count(), 0, 'no runs without a valid token');
  await shot(p, 'wrong-token');
  assert.deepEqual(p.problems, []);
  await p.context().close();
});

test('sign in, start a run that needs approval, approve it, see it complete', async () => {
  const p = await page();
  await signIn(p);
  const id = await startRun(p, 'approve', '2+3');
  runs.approve = id;
  await status(p, 'waiting approval');
  const card = p.locator('#run-approvals article.approval');
  await card.waitFor({ timeout: WAIT });
  const args = await card.locator('pre').textContent();
  assert.deepEqual(JSON.parse(args), { numbers: [2, 3] }, 'the arguments, pretty JSON');
  assert.match(args, /\n {2}"numbers"/, 'indented');
  assert.match(await p.locator('[data-step]').first().textContent(), /waiting/);
  await shot(p, 'approval-waiting', 'approval');
  await card.getByRole('button', { name: 'Approve' }).click();
  await status(p, 'completed');
  await p.locator('#outcome pre').waitFor({ timeout: WAIT });
  assert.notEqual((await p.locator('#outcome pre').textContent()).trim(), '');
  assert.equal(await p.locator('#run-approvals article').count(), 0);
  // The tool's result came from a plugin build: its digest shows.
  const run = await apiGet(`/v1/runs/${id}`);
  const served = run.served.find((s) => s.plugin === 'calculator');
  assert.ok(served, JSON.stringify(run.served));
  assert.match(await p.locator('[data-step]').first().textContent(), new RegExp(served.digest.slice(0, 12)));
  await p.locator('#usage').waitFor();
  await shot(p, 'approval-completed');
  assert.deepEqual(p.problems, []);
  await p.context().close();
});

test('start a run and cancel it', async () => {
  const p = await page();
  await signIn(p);
  const id = await startRun(p, 'slow', 'take your time');
  runs.slow = id;
  await status(p, 'running');
  await p.getByRole('button', { name: 'Cancel run' }).click();
  await status(p, 'cancelled');
  assert.equal((await apiGet(`/v1/runs/${id}`)).status, 'cancelled');
  await shot(p, 'cancelled');
  assert.deepEqual(p.problems, []);
  await p.context().close();
});

test('reject from the Approvals page with a reason; the run goes on and shows it', async () => {
  const p = await page();
  await signIn(p);
  const id = await startRun(p, 'approve', '2+3, but ask');
  await status(p, 'waiting approval');
  await p.locator('nav a', { hasText: 'Approvals' }).click();
  const card = p.locator('#approvals article.approval', { has: p.locator(`a[href="#/runs/${id}"]`) });
  await card.waitFor({ timeout: WAIT });
  await card.getByLabel('Reason').fill('not now, thanks');
  await card.getByRole('button', { name: 'Reject' }).click();
  await card.waitFor({ state: 'detached', timeout: WAIT });
  await p.goto(`${BASE}/#/runs/${id}`);
  await status(p, 'completed');
  await p.locator('#timeline .step').first().click();
  const events = p.locator('#step-detail .events');
  await events.locator('li', { hasText: 'approval.resolved' }).waitFor({ timeout: WAIT });
  const resolved = await events.locator('li', { hasText: 'approval.resolved' }).textContent();
  assert.match(resolved, /"approved":false/);
  assert.match(resolved, /not now, thanks/);
  await shot(p, 'rejected');
  assert.deepEqual(p.problems, []);
  await p.context().close();
});

test('a parallel run: branches side by side, live, each with its builds; keyboard opens a step', async () => {
  const p = await page();
  await signIn(p);
  const id = await startRun(p, 'swap', '{"topic": "offices"}', 'json');
  runs.swap = id;
  await status(p, 'completed');
  const stage = p.locator('.stage.parallel');
  await stage.waitFor({ timeout: WAIT });
  const steps = stage.locator('.step');
  await p.waitForFunction(() => document.querySelectorAll('.stage.parallel .step.st-completed').length === 3, null, { timeout: WAIT });
  const boxes = await Promise.all([0, 1, 2].map((i) => steps.nth(i).boundingBox()));
  assert.ok(boxes.every((b) => Math.abs(b.y - boxes[0].y) < 2), `side by side: ${JSON.stringify(boxes)}`);
  assert.ok(boxes[0].x < boxes[1].x && boxes[1].x < boxes[2].x);
  const seq = p.locator('.stage:not(.parallel) .step');
  assert.equal(await seq.count(), 1, 'the sequential stage before it');
  assert.ok((await seq.boundingBox()).y < boxes[0].y, 'stages in order');
  await stage.locator('.digest', { hasText: 'reducer red' }).waitFor({ timeout: WAIT });
  // Keyboard: tab to the first branch and open it with Enter.
  await steps.nth(0).focus();
  await p.keyboard.press('Enter');
  assert.equal(await steps.nth(0).getAttribute('aria-expanded'), 'true');
  await p.locator('#step-detail h3', { hasText: 'Events' }).waitFor();
  assert.match(await p.locator('#step-detail').textContent(), /step\.completed/);
  assert.match(await p.locator('#step-detail').textContent(), /From the output of stage plan\.Look at costs, buildings and people\./, 'a branch\'s input: the stage before');
  await p.locator('#timeline').scrollIntoViewIfNeeded();
  await shot(p, 'parallel-timeline', 'timeline');
  assert.deepEqual(p.problems, []);
  await p.context().close();
});

test('replay after swapping the reducer shows the changed step', async () => {
  assert.ok(runs.swap, 'the parallel run of the test before');
  const p = await page();
  await signIn(p);
  await p.goto(`${BASE}/#/plugins`);
  const row = p.locator('#plugins tr[data-plugin="red"]');
  await row.waitFor({ timeout: WAIT });
  await p.locator('#reloads[data-live="true"]').waitFor({ state: 'attached', timeout: WAIT });
  const v2 = createHash('sha256').update(fs.readFileSync(env('REDUCER_V2'))).digest('hex');
  assert.notEqual(await row.locator('code').getAttribute('data-digest'), v2);
  // Swap the build the way an editor does: write aside, rename over.
  const red = env('RED_PLUGIN');
  fs.copyFileSync(env('REDUCER_V2'), path.join(path.dirname(red), '.red.wasm.tmp'));
  fs.renameSync(path.join(path.dirname(red), '.red.wasm.tmp'), red);
  await p.locator('#reloads li[data-event="plugin.reloaded"]', { hasText: 'red' }).waitFor({ timeout: WAIT });
  await p.locator(`#plugins tr[data-plugin="red"] code[data-digest="${v2}"]`).waitFor({ timeout: WAIT });
  await shot(p, 'plugin-reloaded');

  await p.goto(`${BASE}/#/runs/${runs.swap}`);
  await p.getByRole('button', { name: 'Replay with current plugins' }).click();
  const report = p.locator('#replay-report');
  await report.waitFor({ timeout: WAIT });
  const changed = report.locator('[data-changed-hook$="/reduce"]');
  await changed.waitFor();
  const [before, after] = await changed.locator('pre').allTextContents();
  assert.match(before, /^v1: /, before);
  assert.match(after, /^v2: /, after);
  assert.match(await report.textContent(), /zero model calls/);
  assert.match(await p.locator('#replay-changed').textContent(), /research · reducer red/);
  await p.locator('.stage[data-stage="research"] .badge', { hasText: 'changed in replay' }).waitFor();
  await report.scrollIntoViewIfNeeded();
  await shot(p, 'replay-report', 'replay');
  // A build that does not load: the error shows live, v2 keeps serving.
  await p.goto(`${BASE}/#/plugins`);
  await p.locator('#reloads[data-live="true"]').waitFor({ state: 'attached', timeout: WAIT });
  fs.writeFileSync(path.join(path.dirname(red), '.red.wasm.tmp'), 'not a component');
  fs.renameSync(path.join(path.dirname(red), '.red.wasm.tmp'), red);
  await p.locator('#reloads li[data-event="plugin.reload_failed"]', { hasText: 'red' }).waitFor({ timeout: WAIT });
  await p.locator('#plugins tr[data-plugin="red"] .alert').waitFor({ timeout: WAIT });
  assert.equal(await p.locator('#plugins tr[data-plugin="red"] code').getAttribute('data-digest'), v2);
  await shot(p, 'plugin-reload-failed');
  assert.deepEqual(p.problems, []);
  await p.context().close();
});

test('the runs list updates live and filters by status and workflow; another account sees none of it', async () => {
  const p = await page();
  await signIn(p);
  for (const id of [runs.approve, runs.slow, runs.swap]) await p.locator(`#runs tr[data-run="${id}"]`).waitFor({ timeout: WAIT });
  // A run started elsewhere appears without a reload.
  const r = await fetch(`${BASE}/v1/runs`, {
    method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ workflow: 'approve', input: 'from elsewhere' }),
  });
  assert.equal(r.status, 202);
  const { run_id: elsewhere } = await r.json();
  await p.locator(`#runs tr[data-run="${elsewhere}"][data-status="waiting_approval"]`).waitFor({ timeout: WAIT });
  await p.locator('#filter-status').selectOption('cancelled');
  await p.waitForFunction((id) => {
    const rows = [...document.querySelectorAll('#runs tbody tr')];
    return rows.length > 0 && rows.every((tr) => tr.dataset.status === 'cancelled') && rows.some((tr) => tr.dataset.run === id);
  }, runs.slow, { timeout: WAIT });
  await p.locator('#filter-status').selectOption('');
  await p.locator('#filter-workflow').selectOption('swap');
  await p.waitForFunction((id) => {
    const rows = [...document.querySelectorAll('#runs tbody tr')];
    return rows.length > 0 && rows.every((tr) => tr.dataset.run === id);
  }, runs.swap, { timeout: WAIT });
  await p.locator('#filter-workflow').selectOption('');
  await p.waitForFunction(() => document.querySelectorAll('#runs tbody tr').length >= 4, null, { timeout: WAIT });
  await shot(p, 'runs-list', 'runs');
  assert.deepEqual(p.problems, []);
  await p.context().close();

  const q = await page();
  await signIn(q, OTHER);
  await q.locator('p', { hasText: 'No runs yet.' }).waitFor({ timeout: WAIT });
  assert.equal(await q.locator('#runs tbody tr').count(), 0);
  await q.goto(`${BASE}/#/runs/${runs.swap}`);
  await q.locator('h1', { hasText: 'No such run' }).waitFor({ timeout: WAIT });
  await shot(q, 'other-account');
  await q.context().close();
});

test('fifty steps and a 1 MB output stay usable', async () => {
  const p = await page();
  await signIn(p);
  const started = Date.now();
  await startRun(p, 'long', 'go');
  await status(p, 'completed');
  await p.waitForFunction(() => document.querySelectorAll('#timeline .step.st-completed').length === 50, null, { timeout: WAIT });
  const show = p.locator('#outcome button', { hasText: 'Show all' });
  await show.waitFor({ timeout: WAIT });
  assert.ok((await p.locator('#outcome pre').textContent()).length <= 64 * 1024, 'clipped');
  // The last step's 1 MB output is clipped in its detail too.
  await p.locator('#timeline .step').last().click();
  await p.locator('#step-detail button', { hasText: 'Show all' }).waitFor();
  await show.click();
  assert.ok((await p.locator('#outcome pre').textContent()).length >= 1_000_000, 'the whole output on request');
  assert.ok(Date.now() - started < 60_000, 'in reasonable time');
  await shot(p, 'fifty-steps');
  assert.deepEqual(p.problems, []);
  await p.context().close();
});

test('phone width and dark mode', async () => {
  const p = await page({ viewport: { width: 390, height: 844 }, colorScheme: 'dark', isMobile: true, hasTouch: true });
  await signIn(p);
  await p.goto(`${BASE}/#/runs/${runs.swap}`);
  await status(p, 'completed');
  await p.locator('.stage.parallel .step').first().waitFor();
  assert.deepEqual(await p.locator('.stage').evaluateAll((els) => els.map((e) => e.dataset.stage)), ['plan', 'research'], 'stages in order');
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `no sideways scrolling at phone width (${overflow}px too wide)`);
  const bg = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, 'rgb(17, 20, 24)', 'the dark palette');
  await shot(p, 'phone-dark');
  await p.goto(`${BASE}/#/runs`);
  await p.locator('#runs tbody tr').first().waitFor({ timeout: WAIT });
  const listOverflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(listOverflow <= 1, `runs list fits (${listOverflow}px too wide)`);
  await shot(p, 'phone-runs');
  assert.deepEqual(p.problems, []);
  await p.context().close();
});
