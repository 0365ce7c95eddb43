import { tool } from './sdk.js';

// The weather for a city from an HTTP API, with `fetch`. The host sends the
// request only to hosts the spec grants (`plugins.js_weather.allowed_hosts`)
// and adds the API token itself (`plugins.js_weather.secrets`).
tool('js_weather', 'current weather for a city', {
  type: 'object',
  properties: { city: { type: 'string' } },
  required: ['city'],
  additionalProperties: false,
}, async (ctx, { city }) => {
  const base = ctx.config.base_url ?? 'https://api.weather.example';
  const res = await fetch(`${base}/v1/weather?city=${encodeURIComponent(city)}`);
  if (!res.ok) throw `the weather API answered ${res.status}`;
  return await res.json();
});
