// One balancing state for all the workers: round robin alternates strictly across the whole proxy (new connections
// and keep-alive ones, 2 and 4 workers), leastconn counts every worker's connections, a server's maxconn and the
// backend's queue hold for the whole proxy, and health and admin states agree across workers, the runtime API and
// the stats page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import {
  fakeBackend,
  freePort,
  get,
  parseCsv,
  startProxy,
  statsCommand,
  tmpDir,
  until,
  workerThreads,
  type FakeBackend,
} from './helpers.ts';

function config(port: number, workers: number, servers: string, extra = '', global = ''): string {
  return `global\n    nbthread ${workers}\n${global}defaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n    timeout queue 10s\nlisten web\n    bind 127.0.0.1:${port}\n${extra}${servers}`;
}

const who = (body: string) => body.split(' ')[0];

async function twoBackends(t: { after(fn: () => Promise<void>): void }): Promise<[FakeBackend, FakeBackend]> {
  const a = await fakeBackend('web01');
  const b = await fakeBackend('web02');
  t.after(async () => {
    await a.close();
    await b.close();
  });
  return [a, b];
}

for (const workers of [2, 4]) {
  test(`roundrobin alternates strictly across ${workers} workers: new connections and keep-alive ones`, async (t) => {
    const [a, b] = await twoBackends(t);
    const port = await freePort();
    const px = await startProxy(
      config(port, workers, `    balance roundrobin\n    server web01 127.0.0.1:${a.port}\n    server web02 127.0.0.1:${b.port}\n`),
      port,
    );
    t.after(() => px.stop().then(() => undefined));
    await until(`${workers} workers`, () => workerThreads(px.proc.pid!).length === workers);
    const seq: string[] = [];
    for (let i = 0; i < 24; i++) seq.push(who((await get(port, `/n${i}`)).body));
    // the first may be either; from there each request goes to the other server
    for (let i = 1; i < seq.length; i++) assert.notEqual(seq[i], seq[i - 1], `new connections: ${seq.join(' ')}`);
    // keep-alive: several client connections (spread over the workers by the kernel), one request at a time on each in turn
    const agents = Array.from({ length: workers * 2 }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
    t.after(async () => agents.forEach((x) => x.destroy()));
    const ka: string[] = [];
    for (let i = 0; i < 32; i++) ka.push(who((await get(port, `/k${i}`, { agent: agents[i % agents.length] })).body));
    for (let i = 1; i < ka.length; i++) assert.notEqual(ka[i], ka[i - 1], `keep-alive: ${ka.join(' ')}`);
    // with weights: 2 to 1, over the whole proxy
    const c = await fakeBackend('web03');
    t.after(() => c.close());
    const n = (px.stderr().match(/configuration reloaded/g) ?? []).length;
    px.write(
      config(
        port,
        workers,
        `    balance roundrobin\n    server web01 127.0.0.1:${a.port} weight 2\n    server web03 127.0.0.1:${c.port} weight 1\n`,
      ),
    );
    px.reload();
    await until('reloaded', () => (px.stderr().match(/configuration reloaded/g) ?? []).length > n);
    const w: string[] = [];
    for (let i = 0; i < 30; i++) w.push(who((await get(port, `/w${i}`)).body));
    assert.equal(w.filter((x) => x === 'web01').length, 20, w.join(' '));
    assert.ok(!w.join(' ').includes('web03 web03'), `web03 never twice in a row: ${w.join(' ')}`);
  });
}

test("leastconn counts every worker's connections: long requests spread evenly over the servers", async (t) => {
  const [a, b] = await twoBackends(t);
  a.mode = b.mode = { kind: 'delay', ms: 2500 };
  const port = await freePort();
  const px = await startProxy(
    config(port, 2, `    balance leastconn\n    server web01 127.0.0.1:${a.port}\n    server web02 127.0.0.1:${b.port}\n`),
    port,
  );
  t.after(() => px.stop().then(() => undefined));
  await until('2 workers', () => workerThreads(px.proc.pid!).length === 2);
  // 12 long requests, one after the other on new connections (the kernel spreads them over the workers): each
  // goes to the server with fewer in flight, whichever worker takes it
  const all: Promise<{ status: number }>[] = [];
  for (let i = 0; i < 12; i++) {
    all.push(get(port, `/long${i}`));
    await until(`request ${i} at a server`, () => a.active + b.active === i + 1, 2000, 5);
  }
  assert.deepEqual([a.active, b.active], [6, 6], 'in flight per server');
  for (const r of await Promise.all(all)) assert.equal(r.status, 200);
  assert.deepEqual([a.maxActive, b.maxActive], [6, 6]);
});

test("a server's maxconn and the backend queue hold for the whole proxy: 50 slow requests, maxconn 5, 2 workers", async (t) => {
  const a = await fakeBackend('web01');
  t.after(() => a.close());
  a.mode = { kind: 'delay', ms: 300 };
  const port = await freePort();
  const dir = tmpDir();
  t.after(async () => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, 'stats.sock');
  const px = await startProxy(
    config(port, 2, `    server web01 127.0.0.1:${a.port} maxconn 5\n`, '', `    stats socket ${sock} level admin\n`),
    port,
  );
  t.after(() => px.stop().then(() => undefined));
  await until('2 workers', () => workerThreads(px.proc.pid!).length === 2);
  let peakQueue = 0;
  const watch = setInterval(() => {
    void statsCommand(sock, 'show stat').then(
      (s) => {
        const be = parseCsv(s).find((r) => r.pxname === 'web' && r.svname === 'BACKEND');
        if (be) peakQueue = Math.max(peakQueue, Number(be.qcur));
      },
      () => {},
    );
  }, 50);
  t.after(async () => clearInterval(watch));
  const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => get(port, `/slow${i}`)));
  clearInterval(watch);
  assert.deepEqual([...new Set(rs.map((r) => r.status))], [200], 'every request served');
  assert.equal(a.requests.length, 50);
  assert.equal(a.maxActive, 5, 'never more than maxconn at the server, and maxconn reached');
  const rows = parseCsv(await statsCommand(sock, 'show stat'));
  const srv = rows.find((r) => r.svname === 'web01')!;
  const be = rows.find((r) => r.svname === 'BACKEND')!;
  assert.equal(srv.smax, '5', 'the stats see the same maximum');
  assert.ok(Number(be.qmax) >= 40, `the rest waited in one queue: qmax ${be.qmax}`);
  assert.ok(peakQueue > 0, 'qcur seen while they waited');
  assert.equal(be.qcur, '0');
  assert.equal(srv.scur, '0');
});

test('health and admin states agree across workers, the runtime API and the stats page', async (t) => {
  const [a, b] = await twoBackends(t);
  const port = await freePort();
  const dir = tmpDir();
  t.after(async () => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, 'stats.sock');
  const px = await startProxy(
    config(
      port,
      2,
      `    server web01 127.0.0.1:${a.port}\n    server web02 127.0.0.1:${b.port}\n`,
      '    stats enable\n    stats uri /stats\n',
      `    stats socket ${sock} level admin\n`,
    ),
    port,
  );
  t.after(() => px.stop().then(() => undefined));
  await until('2 workers', () => workerThreads(px.proc.pid!).length === 2);
  assert.equal(await statsCommand(sock, 'set server web/web01 state drain'), '\n');
  // right after the answer, whichever worker takes the connection: none to the drained server
  const seq: string[] = [];
  for (let i = 0; i < 16; i++) seq.push(who((await get(port, `/d${i}`)).body));
  assert.deepEqual([...new Set(seq)], ['web02'], seq.join(' '));
  const api = parseCsv(await statsCommand(sock, 'show stat')).find((r) => r.svname === 'web01')!;
  assert.equal(api.status, 'DRAIN');
  assert.match(await statsCommand(sock, 'show servers state'), /^web web01 2 8 /m);
  // the stats page, served by whichever worker: the same state, several times over
  for (let i = 0; i < 6; i++) {
    const page = parseCsv((await get(port, '/stats;csv')).body).find((r) => r.svname === 'web01')!;
    assert.equal(page.status, 'DRAIN');
  }
  assert.equal(await statsCommand(sock, 'set server web/web01 state ready'), '\n');
  const back: string[] = [];
  for (let i = 0; i < 8; i++) back.push(who((await get(port, `/r${i}`)).body));
  assert.deepEqual(new Set(back), new Set(['web01', 'web02']));
  for (let i = 1; i < back.length; i++) assert.notEqual(back[i], back[i - 1], back.join(' '));
});
