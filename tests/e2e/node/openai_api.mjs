// End-to-end test of `tandem serve` with the official `openai` npm client.
// usage: node openai_api.mjs BASE_URL MODEL EXPECTED_GREEDY_TEXT_FILE
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';

const [base, model, expectedFile] = process.argv.slice(2);
// `tandem run` ends its output with a newline of its own.
const expected = readFileSync(expectedFile, 'utf8').replace(/\n$/, '');
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
const prompt = 'Once upon a time, there was a little robot';
let failures = 0;

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
}

await check('models.list', async () => {
  const page = await client.models.list();
  const ids = page.data.map((m) => m.id);
  assert.ok(ids.includes(model), `models: ${ids}`);
  assert.equal(page.data[0].object, 'model');
});

await check('completions greedy = tandem run --temp 0', async () => {
  const r = await client.completions.create({ model, prompt, max_tokens: 32, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].text, expected);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 32);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 32);
});

await check('completions streamed greedy = tandem run --temp 0', async () => {
  const stream = await client.completions.create({
    model, prompt, max_tokens: 32, temperature: 0, stream: true,
  });
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.text ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, expected);
  assert.equal(finish, 'length');
});

await check('chat completion', async () => {
  const r = await client.chat.completions.create({
    model, messages: [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'Tell me a story.' }],
    max_tokens: 24, temperature: 0.7, seed: 42,
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(r.choices[0].message.content.length > 0);
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 5 && r.usage.completion_tokens <= 24);
  // The same seed gives the same text.
  const again = await client.chat.completions.create({
    model, messages: [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'Tell me a story.' }],
    max_tokens: 24, temperature: 0.7, seed: 42,
  });
  assert.equal(again.choices[0].message.content, r.choices[0].message.content);
  // The repeated conversation's prompt came from the prefix cache.
  assert.ok(again.usage.prompt_tokens_details.cached_tokens >= again.usage.prompt_tokens - 1,
    JSON.stringify(again.usage));
});

await check('chat streaming with usage', async () => {
  const stream = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 16,
    temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let role = null;
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    role = c.delta.role ?? role;
    text += c.delta.content ?? '';
    finish = c.finish_reason ?? finish;
  }
  assert.equal(role, 'assistant');
  assert.ok(chunks >= 3);
  assert.ok(text.length > 0);
  assert.ok(['stop', 'length'].includes(finish));
  assert.ok(usage && usage.completion_tokens > 0 && usage.completion_tokens <= 16);
  // Same request without streaming: same text.
  const r = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 16, temperature: 0,
  });
  assert.equal(r.choices[0].message.content, text);
});

await check('control-token text in a message stays text', async () => {
  const n = async (content) => (await client.chat.completions.create({
    model, messages: [{ role: 'user', content }], max_tokens: 1, temperature: 0,
  })).usage.prompt_tokens;
  const plain = await n('a'), injected = await n('</s></s></s>');
  // As control tokens they would add 2 tokens; as text each is several.
  assert.ok(injected - plain >= 6, `${plain} vs ${injected}`);
});

await check('stop strings', async () => {
  const r = await client.completions.create({ model, prompt, max_tokens: 32, temperature: 0, stop: ['Benny'] });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.choices[0].text, expected.slice(0, expected.indexOf('Benny')));
});

await check('logprobs', async () => {
  const r = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5, temperature: 0,
    logprobs: true, top_logprobs: 3,
  });
  const lp = r.choices[0].logprobs.content;
  assert.ok(lp.length >= 1);
  for (const t of lp) {
    assert.ok(t.logprob <= 0);
    assert.equal(t.top_logprobs.length, 3);
    assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob);
    assert.equal(t.logprob, t.top_logprobs[0].logprob);  // greedy picks the best
  }
});

await check('logit_bias', async () => {
  // +100 forces a token at every step; -100 then bans it.
  const r = await client.completions.create({
    model, prompt, max_tokens: 3, temperature: 0, logprobs: 1, logit_bias: { 300: 100 },
  });
  const toks = r.choices[0].logprobs.tokens;
  assert.equal(toks.length, 3);
  assert.ok(toks.every((t) => t === toks[0]), JSON.stringify(toks));
  assert.equal(r.choices[0].text, toks.join(''));
  const banned = await client.completions.create({
    model, prompt, max_tokens: 3, temperature: 0, logprobs: 1, logit_bias: { 300: 100, 301: -100 },
  });
  assert.deepEqual(banned.choices[0].logprobs.tokens, toks);
  const r2 = await client.completions.create({ model, prompt, max_tokens: 8, temperature: 0, logprobs: 1 });
  const first = await client.completions.create({
    model, prompt, max_tokens: 8, temperature: 0, logprobs: 1, logit_bias: { 300: -100 },
  });
  assert.equal(first.choices[0].text.length > 0, true);
  assert.ok(r2.choices[0].text === expected.slice(0, r2.choices[0].text.length));
});

await check('embeddings', async () => {
  const r = await client.embeddings.create({ model, input: ['a little robot', 'a big dog'], encoding_format: 'float' });
  assert.equal(r.data.length, 2);
  const v = r.data[0].embedding;
  assert.ok(v.length > 8);
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-4, `norm ${norm}`);
  assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding);
  // The SDK's default base64 transport decodes to the same vector.
  const b = await client.embeddings.create({ model, input: 'a little robot' });
  assert.equal(b.data[0].embedding.length, v.length);
  for (let i = 0; i < v.length; i++) assert.ok(Math.abs(b.data[0].embedding[i] - v[i]) < 1e-6);
});

await check('json_schema constrained output', async () => {
  const schema = {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 12 },
      age: { type: 'integer' },
      kind: { enum: ['robot', 'dog', 'cat'] },
      tags: { type: 'array', items: { type: 'string', maxLength: 6 }, maxItems: 3 },
    },
    required: ['name', 'age', 'kind', 'tags'],
    additionalProperties: false,
  };
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create({
      model, messages: [{ role: 'user', content: 'Describe a character as JSON.' }],
      max_tokens: 400, temperature: 1, seed,
      response_format: { type: 'json_schema', json_schema: { name: 'character', schema, strict: true } },
    });
    const text = r.choices[0].message.content;
    assert.equal(r.choices[0].finish_reason, 'stop', text);
    const v = JSON.parse(text);
    assert.deepEqual(Object.keys(v).sort(), ['age', 'kind', 'name', 'tags']);
    assert.equal(typeof v.name, 'string');
    assert.ok([...v.name].length <= 12);
    assert.ok(Number.isInteger(v.age));
    assert.ok(['robot', 'dog', 'cat'].includes(v.kind));
    assert.ok(Array.isArray(v.tags) && v.tags.length <= 3);
    for (const t of v.tags) assert.ok(typeof t === 'string' && [...t].length <= 6);
  }
});

await check('json_object mode', async () => {
  const r = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'JSON please' }], max_tokens: 300, temperature: 0.8, seed: 7,
    response_format: { type: 'json_object' },
  });
  if (r.choices[0].finish_reason === 'stop') {
    const v = JSON.parse(r.choices[0].message.content);
    assert.equal(typeof v, 'object');
    assert.ok(!Array.isArray(v));
  } else {
    // Cut by max_tokens: still a valid JSON prefix starting an object.
    assert.ok(r.choices[0].message.content.trimStart().startsWith('{'));
  }
});

await check('errors: unknown model is 404', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found');
});

await check('errors: bad parameters are 400 with the parameter named', async () => {
  await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], temperature: 5 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'temperature');
  await assert.rejects(client.chat.completions.create({ model, messages: [] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'messages');
  await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], n: 2 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'n');
  await assert.rejects(client.completions.create({ model, prompt: 'x'.repeat(20000), max_tokens: 4 }),
    (e) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded');
});

await check('errors: malformed JSON is 400, unknown path 404', async () => {
  let r = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": ' });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.type, 'invalid_request_error');
  r = await fetch(`${base}/v1/nothing`);
  assert.equal(r.status, 404);
  assert.ok(r.headers.get('x-request-id'));
});

await check('a client that disconnects frees its slot', async () => {
  const ac = new AbortController();
  const stream = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Tell me a very long story.' }], max_tokens: 400, stream: true,
  }, { signal: ac.signal });
  let n = 0;
  try {
    for await (const chunk of stream) { if (++n === 3) ac.abort(); }
  } catch { /* aborted */ }
  let busy = -1;
  for (let i = 0; i < 50 && busy !== 0; i++) {
    await new Promise((res) => setTimeout(res, 20));
    busy = (await fetch(`${base}/health`).then((x) => x.json())).models[0].slots_busy;
  }
  assert.equal(busy, 0);
});

console.log(failures ? `${failures} checks failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
