// Reload (SIGHUP) under load: no refused connection, no failed request, health states carried over,
// a broken new config leaves the running one in place; SIGTERM drains and exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ensureBuilt,
  fakeBackend,
  freePort,
  get,
  parseCsv,
  proxyBin,
  proxyNode,
  startProxy,
  tmpDir,
  until,
  sleep,
  workerThreads,
} from './helpers.ts';

function config(port: number, live: number, dead: number, extra: string, workers: number): string {
  return `global
    nbthread ${workers}
defaults
    mode http
    retries 3
    option redispatch
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen app
    bind 127.0.0.1:${port}
    stats uri /stats
    server live 127.0.0.1:${live} check inter 100
    server dead 127.0.0.1:${dead} check inter 100 fall 1
${extra}`;
}

for (const workers of [1, 2]) {
  test(`reload under load keeps every connection and the health states (${workers} worker${workers > 1 ? 's' : ''})`, async (t) => {
    const live = await fakeBackend('live');
    const other = await fakeBackend('other');
    const dead = await freePort();
    const port = await freePort();
    const px = await startProxy(config(port, live.port, dead, '', workers), port);
    t.after(async () => {
      await px.stop();
      await live.close();
      await other.close();
    });
    const csv = async () => parseCsv((await get(port, '/stats;csv')).body);
    await until('dead DOWN', async () => (await csv()).find((r) => r.svname === 'dead')?.status === 'DOWN');

    // load: 8 clients, new connection per request, a bounded number of requests
    let errors = 0;
    let done = 0;
    let stop = false;
    const client = async () => {
      for (let i = 0; i < 400 && !stop; i++) {
        try {
          const r = await get(port, `/l${i}`);
          if (r.status !== 200) errors++;
        } catch {
          errors++;
        }
        done++;
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, client));
    const reloads = 3;
    for (let i = 1; i <= reloads; i++) {
      await sleep(150);
      const countBefore = (px.stderr().match(/configuration reloaded/g) ?? []).length;
      px.write(config(port, live.port, dead, i % 2 ? `    server other 127.0.0.1:${other.port}\n` : '', workers));
      px.reload();
      await until('reload done', () => (px.stderr().match(/configuration reloaded/g) ?? []).length > countBefore);
      // the dead server is DOWN right after the reload: its state was carried, not reset to UP
      const rows = await csv();
      assert.equal(rows.find((r) => r.svname === 'dead')!.status, 'DOWN', `after reload ${i}`);
    }
    // a config with an error is refused and the running one keeps serving
    px.write('global\n    no-such-keyword\n');
    px.reload();
    await until('reload refused', () => px.stderr().includes('reload failed'));
    assert.match(px.stderr(), /\[ALERT\] parsing \[.*:2\] : 'no-such-keyword'/);
    stop = true;
    await load;
    assert.ok(done > 50, `requests done: ${done}`);
    assert.equal(errors, 0, `${errors} failed requests out of ${done}`);
    assert.equal((await get(port, '/after')).status, 200);
    assert.equal(other.requests.length > 0, true, 'the server added by a reload got traffic');
  });
}

test('SIGTERM lets an in-flight request finish, then exits 0', async (t) => {
  const b = await fakeBackend('slow');
  b.mode = { kind: 'delay', ms: 400 };
  const port = await freePort();
  const px = await startProxy(config(port, b.port, await freePort(), '', 1).replace(/ check inter 100( fall 1)?/g, ''), port);
  t.after(() => b.close());
  const inflight = get(port, '/slow', { agent: new http.Agent({ keepAlive: false }) });
  await until('request at the server', () => b.active > 0);
  const code = px.stop();
  const r = await inflight;
  assert.equal(r.status, 200);
  assert.equal(await code, 0);
});

test('a reload that changes nbthread starts or retires workers', async (t) => {
  const b = await fakeBackend('web');
  const port = await freePort();
  const cfg = (n: number) =>
    `global\n    nbthread ${n}\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\nlisten x\n    bind 127.0.0.1:${port}\n    server s 127.0.0.1:${b.port}\n`;
  const px = await startProxy(cfg(2), port);
  t.after(async () => {
    await px.stop();
    await b.close();
  });
  const workers = () => workerThreads(px.proc.pid!).length;
  await until('2 workers', () => workers() === 2);
  px.write(cfg(3));
  px.reload();
  await until('3 workers', () => workers() === 3).catch((e) => {
    throw new Error(`${e.message}: ${workers()} workers; ${px.stderr()}`);
  });
  px.write(cfg(1));
  px.proc.kill('SIGUSR2');
  await until('1 worker', () => workers() === 1).catch((e) => {
    throw new Error(`${e.message}: ${workers()} workers; ${px.stderr()}`);
  });
  assert.equal((await get(port, '/')).status, 200);
});

test('a SIGHUP during start-up does not kill the proxy: the reload happens once it is up', async (t) => {
  ensureBuilt();
  const b = await fakeBackend('web');
  const port = await freePort();
  const dir = tmpDir();
  const cfgFile = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfgFile,
    `global\n    nbthread 2\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\nlisten x\n    bind 127.0.0.1:${port}\n    server s 127.0.0.1:${b.port}\n`,
  );
  const proc = spawn(proxyNode, [proxyBin, '-f', cfgFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  t.after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await done;
    }
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // as soon as the process catches SIGHUP (the node binary itself takes a moment to boot), before it has started
  const catchesHup = () => {
    try {
      const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
      return !!m && (BigInt('0x' + m[1]) & 1n) === 1n;
    } catch {
      return false;
    }
  };
  await until('SIGHUP caught', catchesHup, 15000, 1);
  const startedBefore = err.includes(' started (');
  proc.kill('SIGHUP');
  await until('reloaded after start-up', () => err.includes('configuration reloaded'));
  if (startedBefore) console.log('# note: the proxy had already started when SIGHUP was sent');
  assert.equal(proc.exitCode, null);
  assert.equal((await get(port, '/')).status, 200);
});
