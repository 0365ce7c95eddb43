// js_collect — a reducer plugin written in JavaScript with guest-sdk/js.
//
// Merges the branch results of a parallel stage into one JSON object:
//   {"results": {label: output}, "skipped": [label], "failed": {label: error}, "count": n}
// where `label` is the branch's agent key (or `<stage>/<agent>` with
// config `{"key": "stage"}`), suffixed with `#<branch-index>` when the same
// label occurs more than once in the stage.

import { log, reducer } from './sdk.js';

const NAME = 'js_collect';

function labelOf(config) {
  const key = config.key ?? 'agent';
  if (key !== 'agent' && key !== 'stage') {
    throw `${NAME}: config.key must be "agent" or "stage", got ${JSON.stringify(key)}`;
  }
  return (r) => (key === 'stage' ? `${r.stageName}/${r.agentKey}` : r.agentKey);
}

reducer(
  NAME,
  'Collects the branch outputs of a parallel stage into {results, skipped, failed, count} (JavaScript)',
  (ctx, outputs) => {
    const base = labelOf(ctx.config);
    // Labels that occur more than once get a `#<branch-index>` suffix.
    const seen = new Map();
    for (const r of outputs) seen.set(base(r), (seen.get(base(r)) ?? 0) + 1);
    const label = (r, position) =>
      seen.get(base(r)) === 1 ? base(r) : `${base(r)}#${r.branchIndex ?? position}`;

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
        results[name] = r.output;
        count += 1;
      }
    });

    log('info', `${NAME}: collected ${count} of ${outputs.length} branch outputs`, {
      count,
      skipped: skipped.length,
      failed: Object.keys(failed).length,
    });
    return { results, skipped, failed, count };
  },
);
