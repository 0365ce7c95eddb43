import { guard, text } from './sdk.js';

guard('js_keywords', 'runs the step on a keyword', (ctx, input) => {
  const haystack = text(input).toLowerCase();
  return (ctx.config.keywords ?? []).some((k) => haystack.includes(String(k).toLowerCase()));
});
