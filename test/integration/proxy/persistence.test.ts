// Cookie persistence against Debian's HAProxy 2.6: the same config and the same requests to both, the same
// answers (the Set-Cookie and Cache-control headers, which server answers, what the server sees of the cookie):
// stickiness, a DOWN server's cookie (redispatched, a new cookie), a drained server's (still served there), a
// server in maintenance (redispatched), indirect stripping, prefix mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { prerequisites, commandUnavailable } from '../../helpers/env.ts';
import { fakeBackend, freePort, get, parseCsv, startProxy, statsCommand, tmpDir, until, canConnect, type FakeBackend } from './helpers.ts';

interface Ports {
  main: number;
  prefixed: number;
  cached: number;
}

function config(port: Ports, sock: string, b1: number, b2: number, dead: number, app: number): string {
  return `global
    stats socket ${sock} level admin
    nbthread 1

defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s

listen sticky
    bind 127.0.0.1:${port.main}
    balance roundrobin
    option redispatch
    cookie SERVERID insert indirect nocache httponly secure
    server s1 127.0.0.1:${b1} cookie c1
    server s2 127.0.0.1:${b2} cookie c2
    server s3 127.0.0.1:${dead} cookie c3 check inter 100 fall 1 rise 1

listen prefixed
    bind 127.0.0.1:${port.prefixed}
    cookie JSESSIONID prefix
    server p1 127.0.0.1:${app} cookie p1

listen cached
    bind 127.0.0.1:${port.cached}
    cookie SRV insert nocache
    server a1 127.0.0.1:${app} cookie a1
`;
}

/** An application server that sets its own session cookie, and says what Cookie header it got. */
async function appServer(): Promise<{ port: number; seen: string[]; close: () => Promise<void> }> {
  const seen: string[] = [];
  const srv = http.createServer((req, res) => {
    seen.push(req.headers.cookie ?? '');
    // /static: an answer a cache may keep (a validator); /private: one it may not
    const extra: Record<string, string> =
      req.url === '/static' ? { etag: '"v1"' } : req.url === '/private' ? { etag: '"v1"', 'cache-control': 'private' } : {};
    res.writeHead(200, { 'set-cookie': 'JSESSIONID=abc123; Path=/', 'content-type': 'text/plain', ...extra });
    res.end('app\n');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return {
    port: (srv.address() as net.AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}

interface Answer {
  server: string;
  setCookie: string;
  cacheControl: string;
}

async function ask(port: number, cookie?: string): Promise<Answer> {
  const r = await get(port, '/page', cookie ? { headers: { cookie } } : {});
  assert.equal(r.status, 200);
  const sc = r.headers['set-cookie'];
  return {
    server: String(r.headers['x-server'] ?? ''),
    setCookie: sc ? sc.join(' | ') : '',
    cacheControl: String(r.headers['cache-control'] ?? ''),
  };
}

/** The scenario; everything it observed, in order, to be compared between the two proxies. */
async function scenario(ports: Ports, sock: string, b1: FakeBackend, b2: FakeBackend, app: { seen: string[] }) {
  const out: Record<string, unknown> = {};
  const port = ports.main;
  b1.requests.length = b2.requests.length = 0;
  app.seen.length = 0;
  // a first visit: a server and its cookie
  out.first = await ask(port);
  // 20 requests with s2's cookie all go to s2, which never sees the cookie (indirect), and get no new cookie
  const sticky: Answer[] = [];
  for (let i = 0; i < 20; i++) sticky.push(await ask(port, 'a=1; SERVERID=c2; b=2'));
  out.sticky = sticky;
  out.s2saw = [...new Set(b2.requests.map((r) => r.headers.cookie))];
  // an unknown value: balanced, a new cookie
  out.unknown = (await ask(port, 'SERVERID=nosuch')).setCookie.startsWith('SERVERID=c');
  // the cookie of a DOWN server: redispatched, and a new cookie names the server that answered
  const down = await ask(port, 'SERVERID=c3');
  out.down = down.setCookie === `SERVERID=${down.server === 'web1' ? 'c1' : 'c2'}; path=/; HttpOnly; Secure`;
  // drained: the sticky user stays; a new one goes elsewhere
  await statsCommand(sock, 'set server sticky/s2 state drain');
  const drained: Answer[] = [];
  for (let i = 0; i < 3; i++) drained.push(await ask(port, 'SERVERID=c2'));
  out.drained = drained;
  out.drainedNew = [(await ask(port)).server, (await ask(port)).server];
  // in maintenance: its cookie is ignored, the request goes to s1 with s1's cookie
  await statsCommand(sock, 'set server sticky/s2 state maint');
  out.maint = await ask(port, 'SERVERID=c2');
  await statsCommand(sock, 'set server sticky/s2 state ready');
  // POST: no Cache-control (not cacheable), the cookie still set
  const post = await get(port, '/form', { method: 'POST', body: 'x=1' });
  out.post = [post.headers['set-cookie']?.[0], post.headers['cache-control']];
  // prefix: the server's cookie gets the server's value before it, and loses it on the way back
  const p1 = await get(ports.prefixed, '/');
  out.prefixSet = p1.headers['set-cookie'];
  await get(ports.prefixed, '/', { headers: { cookie: 'JSESSIONID=p1~abc123; x=y' } });
  out.prefixSeen = [...app.seen];
  // nocache: Cache-control: private only on an answer a cache could keep
  const cc: unknown[] = [];
  for (const [path, method] of [
    ['/static', 'GET'],
    ['/static', 'HEAD'],
    ['/static', 'POST'],
    ['/private', 'GET'],
    ['/', 'GET'],
  ]) {
    const r = await get(ports.cached, path, { method });
    cc.push([path, method, r.headers['set-cookie'], r.headers['cache-control']]);
  }
  out.nocache = cc;
  const csv = parseCsv(await statsCommand(sock, 'show stat'));
  out.cookieColumn = csv.filter((r) => r.pxname === 'sticky').map((r) => `${r.svname}=${r.cookie}`);
  return out;
}

test('cookie persistence answers as HAProxy 2.6 does', async (t) => {
  if (!prerequisites(t, commandUnavailable('haproxy'))) return;
  const b1 = await fakeBackend('web1');
  const b2 = await fakeBackend('web2');
  const app = await appServer();
  const dead = await freePort(); // nothing listens: s3 is DOWN after its first check
  const dir = tmpDir();
  const portH: Ports = { main: await freePort(), prefixed: await freePort(), cached: await freePort() };
  const portO: Ports = { main: await freePort(), prefixed: await freePort(), cached: await freePort() };
  const sockH = join(dir, 'h.sock');
  const sockO = join(dir, 'o.sock');
  const cfgH = join(dir, 'h.cfg');
  writeFileSync(cfgH, config(portH, sockH, b1.port, b2.port, dead, app.port));
  const hap = spawn('haproxy', ['-db', '-f', cfgH], { stdio: ['ignore', 'ignore', 'pipe'] });
  let hapErr = '';
  hap.stderr!.on('data', (d) => (hapErr += d));
  const ours = await startProxy(config(portO, sockO, b1.port, b2.port, dead, app.port), portO.main);
  t.after(async () => {
    hap.kill('SIGTERM');
    await ours.stop();
    await b1.close();
    await b2.close();
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await until(`haproxy listening (${hapErr})`, () => canConnect(portH.main));
  for (const sock of [sockH, sockO])
    await until('s3 DOWN', async () => {
      const rows = parseCsv(await statsCommand(sock, 'show stat').catch(() => '# x\n'));
      return rows.some((r) => r.svname === 's3' && r.status === 'DOWN');
    });
  const h = await scenario(portH, sockH, b1, b2, app);
  const o = await scenario(portO, sockO, b1, b2, app);
  // what HAProxy does, spelled out (the comparison below then holds ours to it)
  assert.deepEqual(h.first, { server: 'web1', setCookie: 'SERVERID=c1; path=/; HttpOnly; Secure', cacheControl: '' });
  assert.deepEqual(
    (h.sticky as Answer[]).map((a) => a.server + a.setCookie),
    Array(20).fill('web2'),
  );
  assert.deepEqual(h.s2saw, ['a=1; b=2']);
  for (const k of Object.keys(h)) assert.deepEqual(o[k], h[k], k);
});
