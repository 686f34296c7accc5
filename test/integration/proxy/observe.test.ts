// Passive health (observe layer7 + error-limit + on-error), frontend maxconn, stats auth, httplog on stdout.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fakeBackend, freePort, get, parseCsv, proxyBin, startProxy, tmpDir, until, HTTP_DEFAULTS } from './helpers.ts';

/** Fake servers a and b behind a proxy whose `listen app` section goes on with `rest`; all stopped after the test. */
async function twoServers(t: TestContext, rest: (a: number, b: number) => string) {
  const a = await fakeBackend('a');
  const b = await fakeBackend('b');
  const port = await freePort();
  const px = await startProxy(
    `${HTTP_DEFAULTS}listen app\n    bind 127.0.0.1:${port}\n    stats uri /stats\n${rest(a.port, b.port)}`,
    port,
  );
  t.after(async () => {
    await px.stop();
    await a.close();
    await b.close();
  });
  return { a, b, port, px };
}

test('observe layer7: error-limit 5xx answers mark the server down (on-error mark-down)', async (t) => {
  const { a, port, px } = await twoServers(
    t,
    (a, b) => `    server a 127.0.0.1:${a} check inter 60s observe layer7 error-limit 3 on-error mark-down
    server b 127.0.0.1:${b} check inter 60s
`,
  );
  a.mode = { kind: 'status', status: 500 };
  // round robin: every other request goes to a until it has answered 500 three times
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) statuses.push((await get(port, `/o${i}`)).status);
  assert.equal(statuses.filter((s) => s === 500).length, 3, `statuses: ${statuses}`);
  assert.deepEqual(statuses.slice(6), [200, 200, 200, 200], 'only b after the third error');
  const rows = parseCsv((await get(port, '/stats;csv')).body);
  assert.equal(rows.find((r) => r.svname === 'a')!.status, 'DOWN');
  assert.match(px.stderr(), /Server app\/a is DOWN/);
});

test('frontend maxconn: excess connections wait, none is refused', async (t) => {
  const b = await fakeBackend('slow');
  b.mode = { kind: 'delay', ms: 100 };
  const port = await freePort();
  const px = await startProxy(
    `${HTTP_DEFAULTS}listen app
    bind 127.0.0.1:${port}
    maxconn 1
    option httpclose
    server s 127.0.0.1:${b.port}
`,
    port,
  );
  t.after(async () => {
    await px.stop();
    await b.close();
  });
  const rs = await Promise.all(Array.from({ length: 4 }, (_, i) => get(port, `/m${i}`)));
  assert.deepEqual(
    rs.map((r) => r.status),
    [200, 200, 200, 200],
  );
  assert.equal(b.maxActive, 1);
});

test('stats auth and refresh; httplog on stdout', async (t) => {
  const b = await fakeBackend('web');
  const port = await freePort();
  const px = await startProxy(
    `global
    nbthread 1
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen app
    bind 127.0.0.1:${port}
    stats enable
    stats uri /admin?stats
    stats auth admin:s3cret
    stats realm Haproxy\\ Statistics
    stats refresh 10s
    server web 127.0.0.1:${b.port}
`,
    port,
  );
  t.after(async () => {
    await px.stop();
    await b.close();
  });
  const no = await get(port, '/admin?stats');
  assert.equal(no.status, 401);
  assert.equal(no.headers['www-authenticate'], 'Basic realm="Haproxy Statistics"');
  const bad = await get(port, '/admin?stats', { headers: { authorization: 'Basic ' + Buffer.from('admin:nope').toString('base64') } });
  assert.equal(bad.status, 401);
  const ok = await get(port, '/admin?stats', { headers: { authorization: 'Basic ' + Buffer.from('admin:s3cret').toString('base64') } });
  assert.equal(ok.status, 200);
  assert.match(ok.body, /<meta http-equiv="refresh" content="10">/);
  await get(port, '/logged');
  const line = await until('a log line on stdout', () =>
    px
      .stdout()
      .split('\n')
      .find((l) => l.includes('"GET /logged HTTP/1.1"')),
  );
  assert.match(line, /^127\.0\.0\.1:\d+ \[[^\]]+\] app app\/web \d+\/\d+\/\d+\/\d+\/\d+ 200 \d+ - - ---- /);
});

test('observe layer4 on-error fastinter: errors on real traffic bring the next check forward, never postpone it', async (t) => {
  const { a, port } = await twoServers(
    t,
    (a, b) => `    retries 3
    option redispatch
    option httpchk GET /health
    default-server check inter 500 fastinter 250 rise 2 fall 2 observe layer4 error-limit 1 on-error fastinter
    server a 127.0.0.1:${a}
    server b 127.0.0.1:${b}
`,
  );
  const state = async () => parseCsv((await get(port, '/stats;csv')).body).find((r) => r.svname === 'a')!.status;
  await until('a UP', async () => ((await state()) === 'UP' ? true : null));
  // a dies; traffic keeps arriving every 20 ms, each request refused by a (then redispatched to b):
  // an error every 40 ms, far more often than fastinter
  await a.close();
  const died = Date.now();
  const traffic: Promise<unknown>[] = [];
  const sender = setInterval(() => traffic.length < 200 && traffic.push(get(port, `/t${traffic.length}`).catch(() => null)), 20);
  let downAfter: number | null = null;
  try {
    while (Date.now() - died < 4000) {
      if ((await state()) === 'DOWN') {
        downAfter = Date.now() - died;
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    clearInterval(sender);
    await Promise.all(traffic);
  }
  // down within inter + fall x fastinter (and some slack), not never
  assert.ok(downAfter !== null && downAfter < 2000, `a DOWN after ${downAfter} ms`);
});

test('retry-on empty-response: a server that closes without answering costs no 502 (redispatched); without it, a 502; unsupported values refused by name', async (t) => {
  const a = await fakeBackend('a');
  const b = await fakeBackend('b');
  a.mode = { kind: 'reset' };
  const ports = [await freePort(), await freePort()];
  const cfg = (port: number, retryOn: string) => `${HTTP_DEFAULTS}listen app
    bind 127.0.0.1:${port}
    balance roundrobin
    retries 1
    option redispatch
${retryOn}    server a 127.0.0.1:${a.port}
    server b 127.0.0.1:${b.port}
`;
  const withRetry = await startProxy(cfg(ports[0], '    retry-on conn-failure empty-response response-timeout\n'), ports[0]);
  const without = await startProxy(cfg(ports[1], ''), ports[1]);
  t.after(async () => {
    await withRetry.stop();
    await without.stop();
    await a.close();
    await b.close();
  });
  // round robin: one of every two requests goes to a first, which closes the connection unanswered
  const on = await Promise.all(
    [1, 2, 3, 4].map(async (i) => (await get(ports[0], `/r${i}`, { agent: new http.Agent({ keepAlive: false }) })).status),
  );
  assert.deepEqual(on, [200, 200, 200, 200], 'each one retried on b');
  const off = [];
  for (const i of [1, 2, 3, 4]) off.push((await get(ports[1], `/n${i}`, { agent: new http.Agent({ keepAlive: false }) })).status);
  assert.deepEqual([...off].sort(), [200, 200, 502, 502], `without retry-on: ${off}`);
  const dir = tmpDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'retry-on.cfg');
  writeFileSync(file, cfg(1, '    retry-on 503\n'));
  const bad = spawnSync(process.execPath, [proxyBin, '-c', '-f', file], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stdout + bad.stderr, /unsupported 'retry-on' value '503'/);
});
