// Concurrency: many simultaneous streaming requests on few slots all complete, each with the
// text it gets alone (greedy); beyond the queue bound the server answers 503 + Retry-After.
// usage: node concurrency.mjs BASE_URL MODEL N_REQUESTS [expect503]
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const [base, model, nArg, mode] = process.argv.slice(2);
const n = Number(nArg);
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
const starts = ['Once upon a time', 'The little dog', 'Lily and Tom', 'One day, a bird', 'The sun was'];
const prompt = (i) => `${starts[i % starts.length]} number ${i}`;

async function streamOne(i, maxTokens, extra = {}) {
  const stream = await client.completions.create({
    model, prompt: prompt(i), max_tokens: maxTokens, temperature: 0, stream: true, ...extra,
  });
  let text = '';
  let finish = null;
  for await (const c of stream) {
    text += c.choices[0]?.text ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  return { text, finish };
}

if (mode === 'expect503') {
  // Long requests (the end-of-text token banned) so that the slot stays busy.
  const results = await Promise.allSettled([...Array(n).keys()].map((i) => streamOne(i, 400, { logit_bias: { 2: -100 } })));
  const overloaded = results.filter((r) => r.status === 'rejected' && r.reason.status === 503);
  const ok = results.filter((r) => r.status === 'fulfilled');
  assert.ok(overloaded.length >= 1, `no 503 among ${n}`);
  assert.ok(ok.length >= 1, 'nothing succeeded');
  const e = overloaded[0].reason;
  assert.equal(e.headers.get('retry-after'), '1');
  assert.equal(e.error?.type ?? e.type, 'server_error');
  for (const r of results)
    if (r.status === 'rejected') assert.equal(r.reason.status, 503, String(r.reason));
  console.log(`${ok.length} served, ${overloaded.length} got 503`);
  process.exit(0);
}

// Alone, one after the other.
const alone = [];
for (let i = 0; i < n; i++) alone.push(await streamOne(i, 24));
// All at once.
const t0 = Date.now();
const together = await Promise.all([...Array(n).keys()].map((i) => streamOne(i, 24)));
const secs = (Date.now() - t0) / 1000;
for (let i = 0; i < n; i++) {
  assert.equal(together[i].finish, 'length');
  assert.equal(together[i].text, alone[i].text, `request ${i}`);
}
console.log(`${n} concurrent streams matched their solo outputs (${secs.toFixed(2)} s)`);
