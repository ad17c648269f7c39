// End-to-end test of the gateway: OpenAI and Anthropic clients, local and (fake) cloud targets,
// privacy actions checked on the bytes the fake upstream received, faults and fallbacks.
// usage: node gateway.mjs BASE_URL RECORD_FILE FAKE_URL
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

const [base, recordFile, fakeUrl] = process.argv.slice(2);
const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: base, apiKey: 'unused', maxRetries: 0 });
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

const records = () => readFileSync(recordFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const since = (n) => records().slice(n);

async function chat(model, content, extra = {}) {
  const { data, response } = await openai.chat.completions
    .create({ model, messages: [{ role: 'user', content }], max_tokens: 64, ...extra })
    .withResponse();
  return { data, headers: response.headers };
}

async function streamChat(model, content, extra = {}) {
  const stream = await openai.chat.completions.create({
    model, messages: [{ role: 'user', content }], max_tokens: 64, stream: true,
    stream_options: { include_usage: true }, ...extra,
  });
  let text = '', finish = null, usage = null;
  for await (const c of stream) {
    if (c.usage) usage = c.usage;
    text += c.choices[0]?.delta?.content ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  return { text, finish, usage };
}

await check('OpenAI client -> Anthropic upstream (non-streamed)', async () => {
  const n = records().length;
  const { data, headers } = await chat('claude', 'hello there', { temperature: 0.5 });
  assert.equal(data.choices[0].message.content, 'You said: hello there');
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.ok(data.usage.prompt_tokens > 0 && data.usage.completion_tokens === 4);
  assert.equal(headers.get('x-tandem-target'), 'claude');
  const rec = since(n);
  assert.equal(rec.length, 1);
  assert.equal(rec[0].path, '/v1/messages');
  assert.equal(rec[0].headers['x-api-key'], 'fake-key');
  assert.ok(rec[0].headers['anthropic-version']);
  assert.equal(rec[0].headers['x-request-id'], headers.get('x-request-id'));
  const body = JSON.parse(rec[0].body);
  assert.equal(body.model, 'claude-test');
  assert.equal(body.messages[0].role, 'user');
  assert.ok(body.max_tokens >= 1);
});

await check('OpenAI client -> Anthropic upstream (streamed)', async () => {
  const r = await streamChat('claude', 'stream me please');
  assert.equal(r.text, 'You said: stream me please');
  assert.equal(r.finish, 'stop');
  assert.equal(r.usage.completion_tokens, 5);
});

await check('OpenAI client -> Gemini and OpenAI upstreams', async () => {
  const n = records().length;
  const g = await chat('gemini', 'hi gemini');
  assert.equal(g.data.choices[0].message.content, 'You said: hi gemini');
  const o = await streamChat('gpt', 'hi gpt');
  assert.equal(o.text, 'You said: hi gpt');
  const rec = since(n);
  assert.ok(rec[0].path.includes(':generateContent'));
  assert.ok(rec[1].path.endsWith('/chat/completions'));
  assert.equal(rec[1].headers.authorization, 'Bearer fake-key');
});

await check('Anthropic client -> local model (non-streamed and streamed)', async () => {
  const msg = await anthropic.messages.create({
    model: 'local-small', max_tokens: 24, messages: [{ role: 'user', content: 'Once upon a time' }],
  });
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.content[0].type, 'text');
  assert.ok(msg.content[0].text.length > 0);
  assert.ok(['end_turn', 'max_tokens'].includes(msg.stop_reason));
  assert.ok(msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0);
  const stream = anthropic.messages.stream({
    model: 'local-small', max_tokens: 24, temperature: 0, system: 'You tell stories.',
    messages: [{ role: 'user', content: 'Once upon a time' }],
  });
  let text = '';
  stream.on('text', (t) => { text += t; });
  const final = await stream.finalMessage();
  assert.equal(final.content[0].text, text);
  assert.ok(text.length > 0);
});

await check('Anthropic client -> OpenAI upstream', async () => {
  const msg = await anthropic.messages.create({
    model: 'gpt', max_tokens: 50, system: 'be brief', messages: [{ role: 'user', content: 'translate me' }],
  });
  assert.equal(msg.content[0].text, 'You said: translate me');
  assert.equal(msg.stop_reason, 'end_turn');
  const stream = anthropic.messages.stream({ model: 'gpt', max_tokens: 2, messages: [{ role: 'user', content: 'cut this reply short' }] });
  const final = await stream.finalMessage();
  assert.equal(final.content[0].text.trim(), 'You said:');
  assert.equal(final.stop_reason, 'max_tokens');
});

const secret = 'Write to jane.doe@example.com or call +44 20 7946 0958 about card 4111 1111 1111 1111.';
const values = ['jane.doe@example.com', '+44 20 7946 0958', '4111 1111 1111 1111', '4111111111111111', '7946'];

await check('privacy route_local: PII never reaches the cloud, a local model answers', async () => {
  const n = records().length;
  const { data, headers } = await chat('claude', secret, { max_tokens: 16 });
  assert.equal(headers.get('x-tandem-target'), 'local-small');
  assert.match(headers.get('x-tandem-privacy'), /action=route_local/);
  assert.match(headers.get('x-tandem-privacy'), /email:1/);
  assert.ok(data.choices[0].message.content.length > 0);
  assert.equal(since(n).length, 0);
});

await check('privacy pseudonymize: placeholders upstream, originals restored (both ways, streamed)', async () => {
  const n = records().length;
  const { data, headers } = await chat('pseudo-gpt', secret);
  assert.match(headers.get('x-tandem-privacy'), /action=pseudonymize/);
  assert.equal(data.choices[0].message.content, `You said: ${secret}`);
  const s = await streamChat('pseudo-gpt', secret);
  assert.equal(s.text, `You said: ${secret}`);
  const msg = await anthropic.messages.create({ model: 'pseudo-gpt', max_tokens: 64, messages: [{ role: 'user', content: secret }] });
  assert.equal(msg.content[0].text, `You said: ${secret}`);
  const rec = since(n);
  assert.equal(rec.length, 3);
  for (const r of rec) {
    for (const v of values) assert.ok(!r.body.includes(v), `${v} reached the upstream: ${r.body}`);
    assert.match(r.body, /\[EMAIL_1\]/);
  }
});

await check('privacy block: 403 and nothing leaves', async () => {
  const n = records().length;
  await assert.rejects(chat('blocked-gpt', secret),
    (e) => e instanceof OpenAI.PermissionDeniedError && e.status === 403 && /personal data/.test(e.message));
  await assert.rejects(anthropic.messages.create({ model: 'blocked-gpt', max_tokens: 10, messages: [{ role: 'user', content: secret }] }),
    (e) => e.status === 403);
  assert.equal(since(n).length, 0);
  // Without personal data the same model is fine.
  const ok = await chat('blocked-gpt', 'nothing personal here');
  assert.equal(ok.data.choices[0].message.content, 'You said: nothing personal here');
});

for (const fault of ['500', 'hang', 'reset', 'truncate', 'badjson']) {
  await check(`fault ${fault}: falls back to the next target`, async () => {
    const t0 = Date.now();
    const { data, headers } = await chat(`fallback-${fault}`, 'are you there');
    assert.equal(data.choices[0].message.content, 'You said: are you there');
    assert.equal(headers.get('x-tandem-target'), 'claude');
    assert.ok(Date.now() - t0 < 8000);
    if (fault === 'truncate') {
      // A stream cut after its first bytes cannot fall back (the client already has text):
      // it ends with a clean error instead.
      await assert.rejects(streamChat(`fallback-${fault}`, 'streaming too'));
      return;
    }
    const s = await streamChat(`fallback-${fault}`, 'streaming too');
    assert.equal(s.text, 'You said: streaming too');
  });
}

await check('every target failing: a clean 502, no hang', async () => {
  const t0 = Date.now();
  await assert.rejects(chat('all-broken', 'x'), (e) => e.status === 502 || e.status === 503);
  assert.ok(Date.now() - t0 < 8000);
});

await check('a stream cut upstream mid-way ends with an error, never a hang', async () => {
  const t0 = Date.now();
  await assert.rejects(streamChat('truncating', 'please stream a long answer now'), (e) => e instanceof Error);
  assert.ok(Date.now() - t0 < 8000);
});

await check('wrong upstream key: the upstream 401 reaches the client without the key', async () => {
  await assert.rejects(chat('bad-key', 'x'), (e) => e.status === 401 && !/wrong-key-value/.test(JSON.stringify(e.error ?? e.message)));
});

await check('models list: local, cloud and routes', async () => {
  const ids = (await openai.models.list()).data.map((m) => m.id);
  for (const id of ['local-small', 'claude', 'gpt', 'gemini', 'fallback-500']) assert.ok(ids.includes(id), id);
});

void fakeUrl;
console.log(failures ? `${failures} checks failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
