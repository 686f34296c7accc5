// Robustness: thousands of malformed and mutated requests from a seeded generator. The proxy must not
// crash, and every connection must end with an HTTP answer or a clean close within the timeouts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeBackend, freePort, get, raw, startProxy } from './helpers.ts';

/** A small deterministic PRNG (mulberry32), so that a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BASES = [
  'GET / HTTP/1.1\r\nHost: example\r\n\r\n',
  'GET /a/b?c=d HTTP/1.0\r\n\r\n',
  'POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello',
  'POST /chunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
  'HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n',
  'PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc',
];

const NASTY = [
  '\r',
  '\n',
  '\0',
  ' ',
  ':',
  '\t',
  '\r\n',
  '\r\n\r\n',
  'Transfer-Encoding: chunked\r\n',
  'Content-Length: 7\r\n',
  'Content-Length: -1\r\n',
  '\x7f',
  '\xff',
  'HTTP/9.9',
  '%00',
  'ffffffffffffffffff\r\n',
  '0\r\n\r\n',
  ',',
  '"',
];

function mutate(rnd: () => number, s: string): string {
  const n = 1 + Math.floor(rnd() * 4);
  for (let k = 0; k < n; k++) {
    const pos = Math.floor(rnd() * (s.length + 1));
    const op = Math.floor(rnd() * 7);
    if (op === 0) s = s.slice(0, pos) + String.fromCharCode(Math.floor(rnd() * 256)) + s.slice(pos + 1);
    else if (op === 1) s = s.slice(0, pos) + NASTY[Math.floor(rnd() * NASTY.length)] + s.slice(pos);
    else if (op === 2) s = s.slice(0, pos);
    else if (op === 3) s = s.slice(0, pos) + s.slice(pos + 1 + Math.floor(rnd() * 10));
    else if (op === 4) {
      const lines = s.split('\r\n');
      const i = Math.floor(rnd() * lines.length);
      lines.splice(i, 0, lines[i]);
      s = lines.join('\r\n');
    } else if (op === 5) s = s.slice(0, pos) + 'X'.repeat(Math.floor(rnd() * 3000)) + s.slice(pos);
    else s = s.toLowerCase();
  }
  return s;
}

test('thousands of mutated requests: no crash, each answered or closed', async (t) => {
  const b = await fakeBackend('web');
  const port = await freePort();
  const cfg = `global
    nbthread 1
defaults
    mode http
    retries 1
    timeout connect 500ms
    timeout client 300ms
    timeout server 500ms
    timeout http-request 200ms
    timeout http-keep-alive 100ms
    timeout tunnel 300ms
listen fuzz
    bind 127.0.0.1:${port}
    option forwardfor
    server web 127.0.0.1:${b.port}
`;
  const px = await startProxy(cfg, port);
  t.after(async () => {
    await px.stop();
    await b.close();
  });
  const rnd = prng(20260401);
  const cases: string[] = [];
  for (let i = 0; i < 3000; i++) cases.push(mutate(rnd, BASES[i % BASES.length]));
  let answered = 0;
  let closed = 0;
  const hung: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++];
      const r = await raw(port, Buffer.from(c, 'latin1'), 4000);
      if (/^HTTP\/1\.[01] \d{3} /.test(r.text)) answered++;
      else if (r.closed) closed++;
      else hung.push(c);
      if (r.text && !/^HTTP\/1\.[01] \d{3} /.test(r.text))
        hung.push(`garbage answer to ${JSON.stringify(c)}: ${JSON.stringify(r.text.slice(0, 80))}`);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  assert.equal(
    answered + closed,
    cases.length,
    `not answered nor closed: ${hung
      .slice(0, 3)
      .map((h) => JSON.stringify(h))
      .join(' | ')}`,
  );
  assert.deepEqual(hung, []);
  assert.ok(answered > 1000, `answered: ${answered}`);
  // still the same process, still serving, no internal error logged
  assert.equal(px.proc.exitCode, null);
  assert.equal((await get(port, '/still-alive')).status, 200);
  assert.doesNotMatch(px.stderr(), /internal error/);
});
