// Listening sockets with several workers: each worker thread has its own socket in one SO_REUSEPORT group (the
// kernel spreads connections over them), a reload keeps them, an address that somebody else holds is refused
// (even by a socket with SO_REUSEPORT), and without the native part one worker carries the traffic and says so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { arch } from 'node:os';
import { join } from 'node:path';
import {
  ensureBuilt,
  fakeBackend,
  freePort,
  get,
  proxyBin,
  proxyNode,
  root,
  startProxy,
  threadTicks,
  tmpDir,
  until,
  workerThreads,
} from './helpers.ts';

const cfg = (port: number, backend: number, workers = 2) =>
  `global\n    nbthread ${workers}\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\nlisten x\n    bind 127.0.0.1:${port}\n    server s 127.0.0.1:${backend}\n`;

const addonFile = join(root, 'dist', 'runtime', `proxy-linux-${arch()}.node`);

/** The processes holding sockets on a local port, per socket: `ss` with process information. */
function owners(port: number, state: 'listening' | 'established'): { inode: string; pids: number[] }[] {
  const r = spawnSync(
    'ss',
    [
      '-H',
      '-t',
      '-n',
      '-p',
      '-e',
      state === 'listening' ? '-l' : 'state',
      ...(state === 'listening' ? [] : ['established']),
      `sport = :${port}`,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => ({ inode: /ino:(\d+)/.exec(l)?.[1] ?? '', pids: [...l.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])) }));
}

test('two workers: a listening socket each, connections taken by both, kept across a reload', async (t) => {
  ensureBuilt();
  assert.ok(existsSync(addonFile), `the build makes ${addonFile}`);
  const b = await fakeBackend('web');
  const port = await freePort();
  const px = await startProxy(cfg(port, b.port), port);
  const conns: net.Socket[] = [];
  t.after(async () => {
    for (const c of conns) c.destroy();
    await px.stop();
    await b.close();
  });
  assert.doesNotMatch(px.stderr(), /one worker carries all the traffic/);
  const pid = px.proc.pid!;
  const workers = await until('two worker threads', () => (workerThreads(pid).length === 2 ? workerThreads(pid) : null));
  const listening = owners(port, 'listening');
  assert.equal(listening.length, 2, `two listening sockets on ${port}: ${JSON.stringify(listening)}`);
  assert.deepEqual(
    listening.map((l) => l.pids),
    [[pid], [pid]],
    'held by the proxy',
  );
  const ticks0 = workers.map((w) => threadTicks(pid, w));

  // 40 connections held open: both workers hold some (all on one would happen once in 2^39)
  for (let i = 0; i < 40; i++) {
    const c = net.connect(port, '127.0.0.1');
    conns.push(c);
    await new Promise((res, rej) => c.once('connect', res).once('error', rej));
  }
  const held = await until('40 accepted connections', () => {
    const e = owners(port, 'established');
    return e.length === 40 ? e : null;
  });
  assert.equal(held.length, 40);
  // both workers take connections: with load on new connections, both threads run (all on one would be a 2^-199 chance)
  for (let i = 0; i < 200; i++) assert.equal((await get(port, `/${i}`)).status, 200);
  const used = workers.map((w, i) => threadTicks(pid, w) - ticks0[i]);
  assert.ok(
    used.every((u) => u > 0),
    `CPU ticks used by each worker thread: ${used.join(', ')}`,
  );

  const before = listening.map((l) => l.inode).sort();
  const n = (px.stderr().match(/configuration reloaded/g) ?? []).length;
  px.reload();
  await until('reloaded', () => (px.stderr().match(/configuration reloaded/g) ?? []).length > n);
  assert.deepEqual(
    owners(port, 'listening')
      .map((l) => l.inode)
      .sort(),
    before,
    'the same sockets after the reload',
  );
  assert.equal((await get(port, '/')).status, 200);
});

test('an address held by another program is refused, even one that set SO_REUSEPORT itself', async () => {
  ensureBuilt();
  const b = await fakeBackend('web');
  const dir = tmpDir();
  try {
    for (const holder of ['plain', 'reuseport'] as const) {
      const port = await freePort();
      let close: () => void;
      if (holder === 'plain') {
        const s = net.createServer().listen(port, '127.0.0.1');
        await new Promise((r) => s.once('listening', r));
        close = () => s.close();
      } else {
        const m = { exports: {} as { listen(h: string, p: number, b: number): number } };
        process.dlopen(m, addonFile);
        // a descriptor with SO_REUSEPORT, listening, as another program of the same user would hold it
        const fd = m.exports.listen('127.0.0.1', port, 16);
        const s = net.createServer().listen({ fd });
        await new Promise((r) => s.once('listening', r));
        close = () => s.close();
      }
      try {
        const file = join(dir, 'haproxy.cfg');
        writeFileSync(file, cfg(port, b.port));
        const r = spawnSync(proxyNode, [proxyBin, '-f', file], { encoding: 'utf8', timeout: 20000 });
        assert.equal(r.status, 1, `${holder}: exit status (stderr: ${r.stderr})`);
        assert.match(r.stderr, new RegExp(`EADDRINUSE.*127\\.0\\.0\\.1:${port}`), holder);
      } finally {
        close();
      }
    }
  } finally {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without the native part one worker carries the traffic, and says so', async (t) => {
  const b = await fakeBackend('web');
  const port = await freePort();
  const px = await startProxy(cfg(port, b.port), port, [], { HASETUP_PROXY_NATIVE: join(root, 'no-such-addon.node') });
  t.after(async () => {
    await px.stop();
    await b.close();
  });
  assert.match(px.stderr(), /\[WARNING\].*one worker carries all the traffic/);
  assert.match(px.stderr(), /started \(1 process\)/);
  assert.equal(owners(port, 'listening').length, 1);
  for (let i = 0; i < 5; i++) assert.equal((await get(port, `/${i}`)).status, 200);
});
