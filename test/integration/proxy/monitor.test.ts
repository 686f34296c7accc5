// The monitor frontend the VRRP tracker asks (roles/proxy's haproxy.cfg), against Debian's HAProxy 2.6 on the same
// config: `monitor-uri` answered by the proxy itself, 200 while the web backend has a usable server and 503 once
// `monitor fail if { nbsrv(web) lt 1 }` holds; answered while the service frontend is at its maxconn and its
// requests wait in the backend's queue (a busy LB is not a failed one: the tracker must not move the VIP because
// of a flood); and a condition naming a backend that does not exist refused by both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { prerequisites, commandUnavailable } from '../../helpers/env.ts';
import {
  startHaproxy,
  ensureBuilt,
  fakeBackend,
  freePort,
  get,
  proxyBin,
  proxyNode,
  sleep,
  startProxy,
  tmpDir,
  until,
  type FakeBackend,
} from './helpers.ts';

function config(www: number, monitor: number, server: number): string {
  return `global
    nbthread 1
    maxconn 20
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout queue 30s
    timeout check 500ms

frontend www
    maxconn 2
    bind 127.0.0.1:${www}
    default_backend web

frontend monitor
    bind 127.0.0.1:${monitor}
    maxconn 10
    no log
    monitor-uri /serving
    monitor fail if { nbsrv(web) lt 1 }

backend web
    option httpchk GET /health
    default-server check inter 200 fastinter 100 downinter 200 rise 1 fall 1
    server s1 127.0.0.1:${server} maxconn 1
`;
}

interface Seen {
  up: number;
  busy: number;
  down: number;
  upAgain: number;
}

/** The monitor's answers: idle, with www full (one request on the server, one queued), the server failing, back. */
async function scenario(www: number, monitor: number, be: FakeBackend): Promise<Seen> {
  const up = (await get(monitor, '/serving')).status;
  be.mode = { kind: 'hang' };
  const agent = new http.Agent({ keepAlive: false });
  const holders = [1, 2].map(() => {
    const r = http.get({ host: '127.0.0.1', port: www, path: '/hold', agent });
    r.on('error', () => {});
    return r;
  });
  // the first holds the server's one slot, the second waits in the queue: www is at its maxconn
  await until('a request on the server', () => be.active === 1);
  await sleep(300);
  const busy = (await get(monitor, '/serving')).status;
  for (const r of holders) r.destroy();
  agent.destroy();
  be.mode = { kind: 'ok' };
  be.checkStatus = 500;
  const down = (await until('the monitor failing', async () => ((await get(monitor, '/serving')).status === 503 ? 503 : 0))) as number;
  be.checkStatus = 200;
  const upAgain = (await until('the monitor passing', async () => ((await get(monitor, '/serving')).status === 200 ? 200 : 0))) as number;
  return { up, busy, down, upAgain };
}

test('the monitor frontend answers the tracker while www is full, 503 with no usable server, as HAProxy 2.6', async (t) => {
  if (!prerequisites(t, commandUnavailable('haproxy'))) return;
  const dir = tmpDir();
  const beH = await fakeBackend('h');
  const beO = await fakeBackend('o');
  const [wH, mH, wO, mO] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const cfgH = join(dir, 'h.cfg');
  writeFileSync(cfgH, config(wH, mH, beH.port));
  const hap = await startHaproxy(cfgH, mH);
  const ours = await startProxy(config(wO, mO, beO.port), wO).catch((e: unknown) => {
    hap.stop();
    throw e;
  });
  t.after(async () => {
    hap.stop();
    await ours.stop();
    await beH.close();
    await beO.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const h = await scenario(wH, mH, beH);
  const o = await scenario(wO, mO, beO);
  assert.deepEqual(h, { up: 200, busy: 200, down: 503, upAgain: 200 });
  assert.deepEqual(o, h);
});

test('nbsrv of a backend that does not exist is refused, as HAProxy 2.6 refuses it', (t) => {
  if (!prerequisites(t, commandUnavailable('haproxy'))) return;
  ensureBuilt();
  const dir = tmpDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'bad.cfg');
  writeFileSync(cfg, config(1, 2, 3).replace('nbsrv(web)', 'nbsrv(nosuch)'));
  const h = spawnSync('haproxy', ['-c', '-f', cfg], { encoding: 'utf8' });
  const o = spawnSync(proxyNode, [proxyBin, '-c', '-f', cfg], { encoding: 'utf8' });
  assert.notEqual(h.status, 0, 'haproxy accepted it');
  assert.notEqual(o.status, 0, `ours accepted it: ${o.stdout}${o.stderr}`);
  assert.match(o.stderr + o.stdout, /nosuch/);
});
