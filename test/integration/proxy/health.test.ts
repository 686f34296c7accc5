// Health checks and what depends on them: DOWN after `fall` failures and UP after `rise` successes,
// httpchk with `http-check expect status`, retries + redispatch hiding a refusing server, maxconn queueing,
// and the runtime API on the stats socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fakeBackend, freePort, get, parseCsv, startProxy, statsCommand, syslogSink, until, tmpDir, HTTP_DEFAULTS } from './helpers.ts';

test('check timing: DOWN after 3 failed checks, UP after 2 good ones (rise 2 fall 3)', async (t) => {
  const b = await fakeBackend('web01');
  const sink = await syslogSink();
  const port = await freePort();
  const cfg = `global
    nbthread 1
    log 127.0.0.1:${sink.port} local0
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen app
    bind 127.0.0.1:${port}
    option httpchk GET /health
    server web01 127.0.0.1:${b.port} check inter 300 rise 2 fall 3
`;
  const px = await startProxy(cfg, port);
  t.after(async () => {
    await px.stop();
    await b.close();
    sink.close();
  });
  // let it reach full health (rise + fall - 1 good checks)
  await until('a few good checks', () => b.checks.length >= 4);
  const failFrom = b.checks.length;
  b.checkStatus = 503;
  const down = await sink.waitFor(/Server app\/web01 is DOWN/);
  const failed = b.checks.slice(failFrom).filter((c) => c.status === 503).length;
  assert.equal(failed, 3, `DOWN after ${failed} failed checks`);
  assert.match(down, /^<129>/); // local0.alert
  assert.match(down, /reason: Layer7 wrong status/);
  const r = await get(port, '/x');
  assert.equal(r.status, 503, 'no server left');
  const upFrom = b.checks.length;
  b.checkStatus = 200;
  const up = await sink.waitFor(/Server app\/web01 is UP/);
  const good = b.checks.slice(upFrom).filter((c) => c.status === 200).length;
  assert.equal(good, 2, `UP after ${good} good checks`);
  assert.match(up, /^<133>/); // local0.notice
  assert.equal((await get(port, '/y')).status, 200);
});

test('httpchk with http-check expect status: a server answering another status is DOWN (L7STS)', async (t) => {
  const good = await fakeBackend('good');
  const bad = await fakeBackend('bad');
  bad.checkStatus = 200;
  good.checkStatus = 204;
  const port = await freePort();
  const cfg = `${HTTP_DEFAULTS}listen app
    bind 127.0.0.1:${port}
    option httpchk GET /health
    http-check expect status 204
    stats uri /stats
    server good 127.0.0.1:${good.port} check inter 100
    server bad 127.0.0.1:${bad.port} check inter 100
`;
  const px = await startProxy(cfg, port);
  t.after(async () => {
    await px.stop();
    await good.close();
    await bad.close();
  });
  const rows = await until('bad DOWN in the CSV', async () => {
    const rs = parseCsv((await get(port, '/stats;csv')).body);
    return rs.find((r) => r.svname === 'bad')?.status === 'DOWN' && rs.find((r) => r.svname === 'good')?.check_status !== 'INI' ? rs : null;
  });
  const badRow = rows.find((r) => r.svname === 'bad')!;
  assert.equal(badRow.check_status, 'L7STS');
  assert.equal(badRow.check_code, '200');
  assert.equal(badRow.check_desc, 'Layer7 wrong status');
  assert.equal(rows.find((r) => r.svname === 'good')!.check_status, 'L7OK');
  for (let i = 0; i < 6; i++) assert.equal((await get(port, `/r${i}`)).body.split(' ')[0], 'good');
  assert.equal(bad.requests.filter((r) => r.url.startsWith('/r')).length, 0);
});

test('retries + redispatch: a refusing server costs no client error', async (t) => {
  const live = await fakeBackend('live');
  const deadPort = await freePort(); // nothing listens there: connections are refused
  const port = await freePort();
  const dir = tmpDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, 'admin.sock');
  const cfg = `global
    nbthread 1
    stats socket ${sock} level admin
defaults
    mode http
    retries 3
    option redispatch
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen app
    bind 127.0.0.1:${port}
    balance roundrobin
    server dead 127.0.0.1:${deadPort}
    server live 127.0.0.1:${live.port}
`;
  const px = await startProxy(cfg, port);
  t.after(async () => {
    await px.stop();
    await live.close();
  });
  // the dead server is not checked, so it stays UP (as a node that just died, before its checks fail):
  // half of the requests try it first
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => get(port, `/r${i}`)));
  assert.deepEqual(
    results.map((r) => r.status),
    Array(20).fill(200),
  );
  assert.ok(results.every((r) => r.body.startsWith('live ')));
  const rows = parseCsv(await statsCommand(sock, 'show stat'));
  const dead = rows.find((r) => r.svname === 'dead')!;
  assert.ok(Number(dead.wredis) >= 1, `redispatches: ${dead.wredis}`);
  assert.equal(Number(dead.wretr), 3 * Number(dead.wredis), 'three retries before each redispatch');
  assert.equal(dead.econ, '0');
});

test('server maxconn: excess requests wait in the queue, and time out with 503 after timeout queue', async (t) => {
  const b = await fakeBackend('slow');
  b.mode = { kind: 'delay', ms: 300 };
  const port = await freePort();
  const port2 = await freePort();
  const cfg = `${HTTP_DEFAULTS}listen queued
    bind 127.0.0.1:${port}
    log stdout format raw local0
    option httplog
    timeout queue 10s
    server slow 127.0.0.1:${b.port} maxconn 1
listen shortqueue
    bind 127.0.0.1:${port2}
    timeout queue 100
    server slow 127.0.0.1:${b.port} maxconn 1
`;
  const px = await startProxy(cfg, port);
  t.after(async () => {
    await px.stop();
    await b.close();
  });
  const rs = await Promise.all(Array.from({ length: 5 }, (_, i) => get(port, `/q${i}`)));
  assert.deepEqual(
    rs.map((r) => r.status),
    [200, 200, 200, 200, 200],
  );
  assert.equal(b.maxActive, 1, 'never more than maxconn at the server');
  // %sq/%bq: requests wait in the backend queue; each log line tells how many were ahead of it (0, 0, 1, 2, 3:
  // the second request finds the first at the server and an empty queue)
  const lines: string[] = await until('five log lines', () => {
    const l = px
      .stdout()
      .split('\n')
      .filter((x) => x.includes('queued/slow'));
    return l.length === 5 ? l : null;
  });
  const queued = lines
    .map((l) => / (\d+)\/(\d+) "GET /.exec(l)!)
    .map((m) => `${m[1]}/${m[2]}`)
    .sort();
  assert.deepEqual(queued, ['0/0', '0/0', '0/1', '0/2', '0/3']);
  const rs2 = await Promise.all(Array.from({ length: 3 }, (_, i) => get(port2, `/s${i}`)));
  const statuses = rs2.map((r) => r.status).sort();
  assert.equal(statuses[0], 200);
  assert.ok(statuses.includes(503), `statuses: ${statuses}`);
});

test('runtime API: show stat, disable/enable server, set server state drain/maint/ready', async (t) => {
  const a = await fakeBackend('a');
  const b = await fakeBackend('b');
  const port = await freePort();
  const dir = tmpDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, 'admin.sock');
  const usock = join(dir, 'user.sock');
  const cfg = `global
    stats socket ${sock} mode 600 level admin
    stats socket ${usock}
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen app
    bind 127.0.0.1:${port}
    server a 127.0.0.1:${a.port}
    server b 127.0.0.1:${b.port}
`;
  const px = await startProxy(cfg, port);
  t.after(async () => {
    await px.stop();
    await a.close();
    await b.close();
  });
  const served = async (n: number) => {
    const names = new Set<string>();
    for (let i = 0; i < n; i++) names.add((await get(port, '/')).body.split(' ')[0]);
    return [...names].sort();
  };
  assert.deepEqual(await served(8), ['a', 'b']);
  assert.equal(await statsCommand(usock, 'disable server app/a'), 'Permission denied\n\n');
  assert.equal(await statsCommand(sock, 'disable server app/a'), '\n');
  // the state travels to every worker: once it has, only b answers
  await until('only b serving', async () => (await served(6)).join() === 'b');
  let rows = parseCsv(await statsCommand(sock, 'show stat'));
  assert.equal(rows.find((r) => r.svname === 'a')!.status, 'MAINT');
  assert.equal(rows.find((r) => r.svname === 'a')!.addr, `127.0.0.1:${a.port}`);
  assert.equal(rows.find((r) => r.svname === 'BACKEND')!.algo, 'roundrobin');
  assert.equal(await statsCommand(sock, 'enable server app/a'), '\n');
  await until('a back', async () => (await served(8)).join() === 'a,b');
  assert.equal(await statsCommand(sock, 'set server app/b state drain'), '\n');
  await until('b drained', async () => (await served(6)).join() === 'a');
  rows = parseCsv(await statsCommand(usock, 'show stat'));
  assert.equal(rows.find((r) => r.svname === 'b')!.status, 'DRAIN');
  assert.equal(await statsCommand(sock, 'set server app/b state maint'), '\n');
  assert.equal(await statsCommand(sock, 'set server app/b state ready'), '\n');
  assert.equal(await statsCommand(sock, 'set server app/nope state ready'), 'No such server.\n\n');
  assert.match(await statsCommand(sock, 'bogus'), /^Unknown command/);
  await until('both serving', async () => (await served(8)).join() === 'a,b');
});
