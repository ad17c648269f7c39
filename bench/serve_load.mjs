// Load generator for `tandem serve`: C concurrent clients each send R streaming completions
// and the aggregate generation rate and time-to-first-token percentiles are reported.
// usage: node bench/serve_load.mjs BASE_URL MODEL CLIENTS REQUESTS_PER_CLIENT MAX_TOKENS
const [base, model, cArg, rArg, tArg] = process.argv.slice(2);
const clients = Number(cArg), perClient = Number(rArg), maxTokens = Number(tArg);
const starts = ['Once upon a time', 'The little dog', 'Lily and Tom', 'One day, a bird', 'The sun was'];

async function one(i) {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model, prompt: `${starts[i % starts.length]} (${i})`, max_tokens: maxTokens, temperature: 0.8,
      seed: i, stream: true, stream_options: { include_usage: true }, logit_bias: { 2: -100 },
    }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  let ttft = null, tokens = 0, buf = '';
  const dec = new TextDecoder();
  for await (const part of res.body) {
    buf += dec.decode(part, { stream: true });
    let k;
    while ((k = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, k); buf = buf.slice(k + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const d = JSON.parse(ev.slice(6));
      if (d.choices?.[0]?.text && ttft === null) ttft = performance.now() - t0;
      if (d.usage) tokens = d.usage.completion_tokens;
    }
  }
  return { ttft, tokens, ms: performance.now() - t0 };
}

const t0 = performance.now();
const results = [];
await Promise.all([...Array(clients).keys()].map(async (c) => {
  for (let r = 0; r < perClient; r++) results.push(await one(c * perClient + r));
}));
const secs = (performance.now() - t0) / 1000;
const tokens = results.reduce((s, r) => s + r.tokens, 0);
const ttfts = results.map((r) => r.ttft).sort((a, b) => a - b);
const pct = (p) => ttfts[Math.min(ttfts.length - 1, Math.floor(p * ttfts.length))].toFixed(0);
console.log(JSON.stringify({
  clients, requests: results.length, max_tokens: maxTokens, seconds: +secs.toFixed(2),
  gen_tokens: tokens, tokens_per_s: +(tokens / secs).toFixed(1),
  ttft_ms: { p50: +pct(0.5), p90: +pct(0.9), p99: +pct(0.99) },
}));
