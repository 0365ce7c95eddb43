// The JavaScript plugin SDK (componentize-js).
//
// Register entries with guard / inputMapper / reducer / tool / guardrail;
// the SDK answers `describe`, dispatches every call by entry name, parses
// what the host sends and encodes what you return. You never touch the WIT
// bindings or JSON text:
//
//   import { guard, text } from './sdk.js';
//
//   guard('shouty', 'runs the step when the input is upper case', (ctx, input) =>
//     text(input) === text(input).toUpperCase());
//
// - ctx: { runId, workflowKey, stage, step, entry, config } (config parsed, {} when absent)
// - input / payload / arguments: parsed JSON values
// - prior / outputs: step results { stageName, stepIndex, agentKey,
//   parallelGroup, branchIndex, skipped, output (parsed), error }
// - throw (an Error or a string) to fail the call with that message.
//
// Build: guest-sdk/js/build.sh SRC_DIR OUT.wasm (or `host plugins build`);
// it copies this file beside your sources, so `./sdk.js` resolves.

import { log as hostLog } from 'workflow:plugin/host@0.1.1';

const entries = [];

function register(kind, name, description, fn, extra = {}) {
  if (typeof fn !== 'function') throw new TypeError(`${kind} ${name}: the handler must be a function`);
  entries.push({ kind, name, description, fn, ...extra });
}

/** A guard: return true to run the step, false to skip it. */
export const guard = (name, description, fn) => register('guard', name, description, fn);
/** An input mapper: return the step's input. */
export const inputMapper = (name, description, fn) => register('input-mapper', name, description, fn);
/** A reducer: (ctx, outputs, prior) => the next stage's input. */
export const reducer = (name, description, fn) => register('reducer', name, description, fn);
/** A tool: (ctx, args) => result; parameters is its JSON Schema. */
export const tool = (name, description, parameters, fn) =>
  register('tool', name, description, fn, { parameters });
/** A guardrail: (ctx, phase, payload) => {tripwire, message, info}. */
export const guardrail = (name, description, fn) => register('guardrail', name, description, fn);

/** The text of a JSON value: a string as is, null as '', anything else as JSON. */
export function text(value) {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** A record in the host's log; level is trace|debug|info|warn|error. */
export function log(level, message, fields) {
  hostLog(level, String(message), fields === undefined ? '' : JSON.stringify(fields));
}

function parse(what, json) {
  if (json === undefined || json === null || json === '') return null;
  try {
    return JSON.parse(json);
  } catch (e) {
    throw `host sent invalid JSON for ${what}: ${e.message}`;
  }
}

function context(c) {
  const config = parse('config', c.config) ?? {};
  if (typeof config !== 'object' || Array.isArray(config)) throw `${c.entry}: config must be a JSON object`;
  return { ...c, config };
}

const results = (list) => list.map((r) => ({ ...r, output: parse('a step output', r.output) }));

function find(kind, name) {
  const e = entries.find((x) => x.kind === kind && x.name === name);
  if (!e) throw `this plugin offers no ${kind} named \`${name}\``;
  return e;
}

// Errors cross the boundary as `err(string)`.
function call(f) {
  try {
    return f();
  } catch (e) {
    throw typeof e === 'string' ? e : e instanceof Error ? e.message : String(e);
  }
}

function encode(value) {
  const out = JSON.stringify(value === undefined ? null : value);
  if (out === undefined) throw 'the result is not JSON';
  return out;
}

export const describe = {
  describe: () => entries.map(({ name, kind, description }) => ({ name, kind, description })),
};

export const guard_ = {
  check: (c, input, prior) =>
    call(() => {
      const ctx = context(c);
      return Boolean(find('guard', ctx.entry).fn(ctx, parse('input', input), results(prior)));
    }),
};

export const inputMapper_ = {
  mapInput: (c, input, prior) =>
    call(() => {
      const ctx = context(c);
      return encode(find('input-mapper', ctx.entry).fn(ctx, parse('input', input), results(prior)));
    }),
};

export const reducer_ = {
  reduce: (c, outputs, prior) =>
    call(() => {
      const ctx = context(c);
      return encode(find('reducer', ctx.entry).fn(ctx, results(outputs), results(prior)));
    }),
};

export const tool_ = {
  definitions: () =>
    entries
      .filter((e) => e.kind === 'tool')
      .map(({ name, description, parameters }) => ({
        name,
        description,
        parameters: JSON.stringify(parameters ?? { type: 'object' }),
      })),
  // Async, so a tool may `await fetch(...)`: componentize-js runs the
  // event loop until the promise settles.
  invoke: async (c, name, args) => {
    try {
      return encode(await find('tool', name).fn(context(c), parse('arguments', args) ?? {}));
    } catch (e) {
      throw typeof e === 'string' ? e : e instanceof Error ? e.message : String(e);
    }
  },
};

export const guardrail_ = {
  check: (c, phase, payload) =>
    call(() => {
      const ctx = context(c);
      const v = find('guardrail', ctx.entry).fn(ctx, phase, parse('payload', payload)) ?? {};
      return { tripwire: Boolean(v.tripwire), message: String(v.message ?? ''), info: encode(v.info ?? null) };
    }),
};
