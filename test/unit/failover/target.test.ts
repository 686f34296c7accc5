// Where the failover test's load goes: plain HTTP, or HTTPS trusting the cluster's certificate when
// the inventory redirects HTTP there; the load and the pre-flight's request over HTTPS on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoad, failed } from '../../../cli/failover/load.ts';
import { statusOf, vipTarget } from '../../../cli/failover/target.ts';
import { fixtureInventory } from '../../helpers/fixture-role.ts';
import type { Inventory } from '../../../inventory/types.ts';

type Tls = NonNullable<Inventory['roles']['proxy']['tls']>;
const tls = (over: Partial<Tls>): Tls => ({
  port: 443,
  redirect: true,
  certificate: 'CERT',
  pem: 'CERT KEY',
  source: { kind: 'generated', file: '/x' },
  fingerprint: '',
  notAfter: '',
  names: ['www.example.org'],
  ...over,
});

test('the target: HTTP without a redirect, HTTPS with one (the generated certificate trusted, a CA-signed one checked by name)', () => {
  const inv = fixtureInventory([]);
  inv.vip.address = '10.0.0.100';
  assert.deepEqual(vipTarget(inv), { url: `http://10.0.0.100:${inv.roles.proxy.port}/` });
  inv.roles.proxy.tls = tls({ redirect: false });
  assert.deepEqual(vipTarget(inv), { url: `http://10.0.0.100:${inv.roles.proxy.port}/` }, 'HTTPS beside HTTP: the load stays on HTTP');
  inv.roles.proxy.tls = tls({});
  assert.deepEqual(vipTarget(inv), { url: 'https://10.0.0.100:443/', connect: { ca: 'CERT' } });
  inv.roles.proxy.tls = tls({ source: { kind: 'files', certificate: '/c', key: '/k' } });
  assert.deepEqual(vipTarget(inv), { url: 'https://10.0.0.100:443/', connect: { servername: 'www.example.org' } });
});

test('the load and the pre-flight request over HTTPS trust the given certificate, and only it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hasetup-target-'));
  const server = createServer();
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(dir, 'k'),
        '-out',
        join(dir, 'c'),
        '-days',
        '2',
        '-subj',
        '/CN=t',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'pipe' },
    );
    const cert = readFileSync(join(dir, 'c'), 'utf8');
    server.setSecureContext({ cert, key: readFileSync(join(dir, 'k')) });
    server.on('request', (_req, res) => res.writeHead(200, { 'x-served-by': 'web01' }).end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;

    assert.equal(await statusOf({ url, connect: { ca: cert } }, 5000), 200);
    await assert.rejects(statusOf({ url }, 5000), 'not trusted without the certificate');
    const samples = await runLoad({ url, connect: { ca: cert }, rate: 100, durationMs: 400 });
    assert.ok(samples.length >= 20, `requests sent: ${samples.length}`);
    assert.equal(samples.filter(failed).length, 0);
    assert.ok(samples.every((s) => s.node === 'web01'));
    const untrusted = await runLoad({ url, rate: 50, durationMs: 200 });
    assert.ok(untrusted.length > 0 && untrusted.every(failed), 'every request fails without the certificate');
  } finally {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
