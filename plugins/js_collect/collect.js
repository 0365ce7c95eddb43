// js_collect — a reducer plugin written in JavaScript (componentize-js).
//
// Merges the branch results of a parallel stage into one JSON object:
//   {"results": {label: output}, "skipped": [label], "failed": {label: error}, "count": n}
// where `label` is the branch's agent key (or `<stage>/<agent>` with
// config `{"key": "stage"}`), suffixed with `#<branch-index>` when the same
// label occurs more than once in the stage.

import { log } from 'workflow:plugin/host@0.1.1';

const NAME = 'js_collect';

// Errors cross the boundary as `err(string)`: throwing a plain string from an
// export returning `result<_, string>` becomes the error payload.
function fail(message) {
  throw `${NAME}: ${message}`;
}

function parseConfig(text) {
  if (text === undefined || text === null || text.trim() === '') return {};
  let config;
  try {
    config = JSON.parse(text);
  } catch (e) {
    fail(`config is not valid JSON: ${e.message}`);
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    fail('config must be a JSON object');
  }
  const key = config.key ?? 'agent';
  if (key !== 'agent' && key !== 'stage') {
    fail(`config.key must be "agent" or "stage", got ${JSON.stringify(key)}`);
  }
  return { key };
}

function reduce(ctx, outputs, _prior) {
  const { key } = parseConfig(ctx.config);
  const base = (r) => (key === 'stage' ? `${r.stageName}/${r.agentKey}` : r.agentKey);

  // Labels that occur more than once get a `#<branch-index>` suffix.
  const seen = new Map();
  for (const r of outputs) seen.set(base(r), (seen.get(base(r)) ?? 0) + 1);
  const label = (r, position) => {
    const b = base(r);
    if (seen.get(b) === 1) return b;
    const index = r.branchIndex ?? position;
    return `${b}#${index}`;
  };

  const results = {};
  const skipped = [];
  const failed = {};
  let count = 0;
  outputs.forEach((r, position) => {
    const name = label(r, position);
    if (r.skipped) {
      skipped.push(name);
    } else if (r.error !== undefined && r.error !== null) {
      failed[name] = r.error;
    } else {
      try {
        results[name] = JSON.parse(r.output);
      } catch (e) {
        fail(`output of branch ${JSON.stringify(name)} is not valid JSON: ${e.message}`);
      }
      count += 1;
    }
  });

  log(
    'info',
    `${NAME}: collected ${count} of ${outputs.length} branch outputs`,
    JSON.stringify({ count, skipped: skipped.length, failed: Object.keys(failed).length }),
  );
  return JSON.stringify({ results, skipped, failed, count });
}

export const describe = {
  describe() {
    return [
      {
        name: NAME,
        kind: 'reducer',
        description:
          'Collects the branch outputs of a parallel stage into {results, skipped, failed, count} (JavaScript)',
      },
    ];
  },
};

export const reducer = { reduce };
