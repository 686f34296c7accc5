import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { spawnSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { httpCheck, tcpCheck, parseSelfCheck } from '../../../runtime/vrrpd/check.ts';
import { commandRunner } from '../../../runtime/vrrpd/track.ts';

async function closedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

test('HTTP and TCP checks against a local server, a 500 and a closed port', async (t) => {
  const srv = createServer((req, res) => {
    res.statusCode = req.url === '/health' ? 200 : req.url === '/hang' ? 0 : 500;
    if (req.url !== '/hang') res.end('x');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => srv.close());
  const port = (srv.address() as AddressInfo).port;
  assert.equal(await httpCheck(`http://127.0.0.1:${port}/health`, 2000), true);
  assert.equal(await httpCheck(`http://127.0.0.1:${port}/broken`, 2000), false);
  const t0 = Date.now();
  assert.equal(await httpCheck(`http://127.0.0.1:${port}/hang`, 300), false);
  assert.ok(Date.now() - t0 < 2000);
  srv.closeAllConnections();
  const closed = await closedPort();
  assert.equal(await httpCheck(`http://127.0.0.1:${closed}/`, 2000), false);
  assert.equal(await tcpCheck('127.0.0.1', port, 2000), true);
  assert.equal(await tcpCheck('127.0.0.1', closed, 2000), false);
  // in-process through the runner, as a vrrp_script naming hasetup-vrrpd
  const run = commandRunner();
  assert.equal(
    await run(['/usr/bin/node', '/opt/hasetup/hasetup-vrrpd.cjs', '--check-http', `http://127.0.0.1:${port}/health`], 2000),
    true,
  );
  assert.equal(await run(['hasetup-vrrpd', '--check-tcp', `127.0.0.1:${closed}`], 2000), false);
});

test('self-check recognition', () => {
  assert.deepEqual(parseSelfCheck(['node', '/opt/hasetup/hasetup-vrrpd.cjs', '--check-http', 'http://127.0.0.1/health']), {
    kind: 'http',
    url: 'http://127.0.0.1/health',
  });
  assert.deepEqual(parseSelfCheck(['hasetup-vrrpd', '--check-tcp', '127.0.0.1:80']), { kind: 'tcp', host: '127.0.0.1', port: 80 });
  assert.equal(parseSelfCheck(['/usr/bin/curl', '-f', 'http://127.0.0.1/']), null);
  assert.equal(parseSelfCheck(['node', 'other.js', '--check-http', 'http://x/']), null);
  assert.equal(parseSelfCheck(['hasetup-vrrpd', '--check-tcp', 'nope']), null);
});

test('hasetup-vrrpd --check-http / --check-tcp exit codes', async (t) => {
  const bundle = join(process.cwd(), 'dist/runtime/hasetup-vrrpd.cjs');
  const srv = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => srv.close());
  const port = (srv.address() as AddressInfo).port;
  // the server runs in this process, so the check must not block it: spawn asynchronously
  const code = (args: string[]) =>
    new Promise<number | null>((resolve) => spawn(process.execPath, [bundle, ...args], { stdio: 'ignore' }).on('exit', (c) => resolve(c)));
  assert.equal(await code(['--check-http', `http://127.0.0.1:${port}/`]), 0);
  assert.equal(await code(['--check-tcp', `127.0.0.1:${port}`, '--timeout', '1']), 0);
  const closed = await closedPort();
  assert.equal(await code(['--check-tcp', `127.0.0.1:${closed}`]), 1);
  assert.equal(spawnSync(process.execPath, [bundle, '--check-http', 'ftp://x'], { encoding: 'utf8' }).status, 2);
});
