// The seed's haproxy.cfg, verbatim except for the addresses (loopback backends, loopback syslog, a free
// port): balancing order, X-Forwarded-For, `option httpclose`, the stats page and CSV, httplog lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import {
  fakeBackend,
  freePort,
  get,
  parseCsv,
  proxyBin,
  proxyNode,
  ensureBuilt,
  seedConfig,
  startProxy,
  syslogSink,
  until,
  raw,
} from './helpers.ts';
import { CSV_FIELDS } from '../../../runtime/proxy/stats.ts';

function seedWith(port: number, logPort: number, b1: number, b2: number, extraGlobal = ''): string {
  const text = readFileSync(seedConfig, 'utf8');
  return text
    .replace('0.0.0.0:80', `127.0.0.1:${port}`)
    .replace('192.168.1.10:80', `127.0.0.1:${b1}`)
    .replace('192.168.1.11:80', `127.0.0.1:${b2}`)
    .replace(/log 127\.0\.0\.1\s+local0/, `log 127.0.0.1:${logPort}   local0`)
    .replace('daemon\n', `daemon\n${extraGlobal}`);
}

test('the seed config passes -c as written', () => {
  ensureBuilt();
  const r = spawnSync(proxyNode, [proxyBin, '-c', '-f', seedConfig], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Configuration file is valid/);
  // the 1.3 timeouts are accepted with a deprecation warning naming the line
  assert.match(r.stderr, /\[WARNING\] parsing \[.*haproxy\.cfg:16\] : 'contimeout'/);
});

test('the seed config, one worker: round robin, XFF, httpclose, stats, httplog', async (t) => {
  const b1 = await fakeBackend('web01');
  const b2 = await fakeBackend('web02');
  const sink = await syslogSink();
  const port = await freePort();
  const px = await startProxy(seedWith(port, sink.port, b1.port, b2.port, '    nbthread 1\n'), port);
  t.after(async () => {
    await px.stop();
    await b1.close();
    await b2.close();
    sink.close();
  });

  // strict alternation in declaration order
  const order: string[] = [];
  for (let i = 0; i < 6; i++) {
    const r = await get(port, `/rr${i}`);
    assert.equal(r.status, 200);
    order.push(r.body.split(' ')[0]);
  }
  assert.deepEqual(order, ['web01', 'web02', 'web01', 'web02', 'web01', 'web02']);

  // option forwardfor: the client address appended; option httpclose: close on both sides
  const seen = [...b1.requests, ...b2.requests];
  assert.equal(seen.length, 6);
  for (const r of seen) {
    assert.equal(r.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(r.headers.connection, 'close');
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const r1 = await get(port, '/ka', { agent });
  assert.equal(r1.headers.connection, 'close');
  agent.destroy();

  // stats: HTML page and CSV with HAProxy's header and rows
  const html = await get(port, '/haproxy?stats');
  assert.equal(html.status, 200);
  assert.match(html.headers['content-type'] ?? '', /text\/html/);
  assert.match(html.body, /data-server="web01"/);
  const csv = await get(port, '/haproxy?stats;csv');
  assert.equal(csv.status, 200);
  const headerLine = csv.body.split('\n')[0];
  assert.equal(headerLine, '# ' + CSV_FIELDS.join(',') + ',');
  const rows = parseCsv(csv.body);
  assert.deepEqual(
    rows.map((r) => r.svname),
    ['FRONTEND', 'web01', 'web02', 'BACKEND'],
  );
  const w1 = rows.find((r) => r.svname === 'web01')!;
  assert.equal(w1.pxname, 'webfarm');
  assert.equal(w1.addr, '', 'addresses only on the stats socket, as in HAProxy');
  assert.ok(Number(w1.stot) >= 3);
  assert.equal(rows.find((r) => r.svname === 'BACKEND')!.mode, 'http');

  // httplog lines on the syslog sink (RFC 3164, local0.info = <134>)
  const line = await sink.waitFor(/GET \/rr0 HTTP\/1\.1"$/);
  assert.match(
    line,
    /^<134>\w{3} [ \d]\d \d\d:\d\d:\d\d haproxy\[\d+\]: 127\.0\.0\.1:\d+ \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] webfarm webfarm\/web01 \d+\/\d+\/\d+\/\d+\/\d+ 200 \d+ - - ---- \d+\/\d+\/\d+\/\d+\/0 0\/0 "GET \/rr0 HTTP\/1\.1"$/,
  );
  const statsLine = await sink.waitFor(/"GET \/haproxy\?stats HTTP\/1\.1"$/);
  assert.match(statsLine, / webfarm webfarm\/<STATS> .* 200 \d+ - - LR-- /);

  // dontlognull: a connection without a request leaves no log line
  const before = sink.lines.length;
  await raw(port, '', 200);
  await get(port, '/after-null');
  await sink.waitFor(/GET \/after-null /);
  assert.equal(sink.lines.slice(before).filter((l) => l.includes('<BADREQ>')).length, 0);
});

test('the seed config with the default worker count spreads requests over both servers', async (t) => {
  const b1 = await fakeBackend('web01');
  const b2 = await fakeBackend('web02');
  const sink = await syslogSink();
  const port = await freePort();
  const px = await startProxy(seedWith(port, sink.port, b1.port, b2.port), port);
  t.after(async () => {
    await px.stop();
    await b1.close();
    await b2.close();
    sink.close();
  });
  for (let i = 0; i < 40; i++) assert.equal((await get(port, `/w${i}`)).status, 200);
  assert.equal(b1.requests.length + b2.requests.length, 40);
  assert.ok(b1.requests.length >= 10 && b2.requests.length >= 10, `${b1.requests.length}/${b2.requests.length}`);
  // counters of all workers add up in the CSV
  const rows = parseCsv((await get(port, '/haproxy?stats;csv')).body);
  const be = rows.find((r) => r.svname === 'BACKEND')!;
  assert.equal(Number(be.stot), 40);
  await until('both servers UP in the CSV', async () => {
    const rs = parseCsv((await get(port, '/haproxy?stats;csv')).body);
    return rs.filter((r) => r.status === 'UP').length === 3;
  });
});
