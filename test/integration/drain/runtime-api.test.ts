// The runtime-API exchange of `hasetup drain`, `undrain` and `apply --rolling` against both engines'
// real stats sockets: hasetup-proxy and HAProxy 2.6, each started on the same small config (a
// backend "web" of two fake web nodes), spoken to with the very commands the LBs get (socat on the
// socket). Each answer is read by the same functions the commands use: set server ... state
// answers nothing on success and a reason otherwise; show stat gives DRAIN, MAINT and UP as they
// wait on them; a node drained in the configuration (weight 0) reads as DRAIN too.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiCommand, apiError, BACKEND, othersServing, sessionsOf, setStateCommand } from '../../../cli/drain/runtime-api.ts';
import { parseShowStat, type ServerView } from '../../../cli/status/probe.ts';
import { commandUnavailable, prerequisites } from '../../helpers/env.ts';
import { canConnect, fakeBackend, freePort, startProxy, until } from '../proxy/helpers.ts';

const skip = commandUnavailable('socat', 'haproxy');

/** The config both engines read: the role's shape, without the parts this exchange does not touch. */
function config(port: number, socket: string, a: number, b: number, webBWeight = ''): string {
  return `global
    nbthread 2
    stats socket ${socket} mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend www
    bind 127.0.0.1:${port}
    default_backend ${BACKEND}
backend ${BACKEND}
    balance roundrobin
    option httpchk GET /health
    default-server check inter 200 fastinter 100 rise 2 fall 2
    server web01 127.0.0.1:${a} maxconn 10
    server web02 127.0.0.1:${b} maxconn 10${webBWeight}
`;
}

/** One runtime API command, as the commands send it (sh, printf, socat). */
function api(socket: string, cmd: string): { code: number; out: string } {
  const r = spawnSync('sh', ['-c', apiCommand(cmd, socket)], { encoding: 'utf8', timeout: 10_000 });
  return { code: r.status ?? 1, out: r.stdout };
}

const view = (socket: string): ServerView[] => parseShowStat(api(socket, 'show stat').out).filter((s) => s.backend === BACKEND);
const statusOf = (socket: string, server: string) => view(socket).find((s) => s.server === server)?.status;

interface Engine {
  stop(): Promise<void>;
}

async function startEngine(name: 'bundled' | 'haproxy', cfg: string, port: number, dir: string): Promise<Engine> {
  if (name === 'bundled') {
    const px = await startProxy(cfg, port);
    return { stop: async () => void (await px.stop()) };
  }
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, cfg);
  const hap = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  hap.stderr.on('data', (d) => (err += d));
  const exited = new Promise<void>((r) => hap.once('exit', () => r()));
  await until('haproxy listening', async () => {
    if (hap.exitCode !== null) throw new Error(`haproxy exited: ${err}`);
    return canConnect(port);
  });
  return {
    stop: async () => {
      hap.kill('SIGTERM');
      await exited;
    },
  };
}

/** The engine started on the config, two fake web nodes behind it, all stopped after the test: its stats socket. */
async function engineFor(t: TestContext, engine: 'bundled' | 'haproxy', webBWeight = ''): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'hasetup-api-'));
  const socket = join(dir, 'admin.sock');
  const a = await fakeBackend('web01');
  const b = await fakeBackend('web02');
  const port = await freePort();
  const e = await startEngine(engine, config(port, socket, a.port, b.port, webBWeight), port, dir);
  t.after(async () => {
    await e.stop();
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return socket;
}

for (const engine of ['bundled', 'haproxy'] as const) {
  test(`[${engine}] drain, maint, ready and an unknown server through the stats socket, read as the commands read them`, async (t) => {
    if (!prerequisites(t, skip)) return;
    const socket = await engineFor(t, engine);
    await until('both UP', () => (statusOf(socket, 'web01') === 'UP' && statusOf(socket, 'web02') === 'UP' ? true : null));
    const up = new Map([['lb', view(socket)]]);
    assert.deepEqual(othersServing(up, 'web01'), ['web02']);
    assert.deepEqual(sessionsOf(up, 'web01'), { lb: 0 });

    // drain: no answer on success, DRAIN in show stat, and web01 no longer counts as serving
    const d = api(socket, setStateCommand('web01', 'drain'));
    assert.equal(d.code, 0);
    assert.equal(apiError(d.out), null, `answer: ${JSON.stringify(d.out)}`);
    assert.equal(statusOf(socket, 'web01'), 'DRAIN');
    assert.deepEqual(othersServing(new Map([['lb', view(socket)]]), 'web02'), [], 'web02 is the last that serves');

    // maint, then ready: MAINT, then UP once its checks pass again
    assert.equal(apiError(api(socket, setStateCommand('web01', 'maint')).out), null);
    assert.equal(statusOf(socket, 'web01'), 'MAINT');
    assert.equal(apiError(api(socket, setStateCommand('web01', 'ready')).out), null);
    await until('web01 UP after ready', () => (statusOf(socket, 'web01') === 'UP' ? true : null));

    // a server the proxy does not have: a reason, which the commands show
    const bad = api(socket, setStateCommand('web09', 'drain'));
    assert.match(apiError(bad.out) ?? '', /No such server/i);
  });

  test(`[${engine}] a node drained in the configuration (weight 0, as the proxy role keeps it) reads as DRAIN`, async (t) => {
    if (!prerequisites(t, skip)) return;
    const socket = await engineFor(t, engine, ' weight 0');
    await until('web02 checked', () =>
      statusOf(socket, 'web01') === 'UP' && /DRAIN|UP/.test(statusOf(socket, 'web02') ?? '') ? true : null,
    );
    await until('web02 DRAIN', () => (statusOf(socket, 'web02') === 'DRAIN' ? true : null));
    assert.deepEqual(othersServing(new Map([['lb', view(socket)]]), 'web01'), [], 'web02 does not serve');
  });
}
