// roles.proxy.tls: the generated certificate (made once, kept, renewed when its names change), the
// user's certificate and key (checked), and every bad case as a located error that names the field.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, get } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadInventory, InventoryError } from '../../../inventory/load.ts';
import { secretValues } from '../../../inventory/secrets.ts';
import { generatedTlsPathFor, loadTls } from '../../../inventory/tls.ts';
import { YamlSource } from '../../../inventory/errors.ts';

const here = dirname(fileURLToPath(import.meta.url));
const minimal = readFileSync(join(here, 'fixtures', 'valid-minimal.yaml'), 'utf8');
const work = mkdtempSync(join(tmpdir(), 'hasetup-tls-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** The minimal inventory with `proxy` as roles.proxy (YAML flow text), in a folder of its own. */
function inventory(proxy: string): string {
  const f = join(mkdtempSync(join(work, 'case-')), 'inventory.yaml');
  writeFileSync(f, minimal.replace('roles:\n', `roles:\n  proxy: ${proxy}\n`));
  return f;
}

/** A certificate and key made by openssl (as a user would), in dir; days of validity. */
function userCert(dir: string, name: string, opts: { days?: number; rsa?: boolean } = {}): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const alg = opts.rsa ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      ...alg,
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      String(opts.days ?? 30),
      '-subj',
      `/CN=${name}`,
      '-addext',
      `subjectAltName=DNS:${name}`,
    ],
    { stdio: 'pipe' },
  );
  chmodSync(key, 0o600);
  return { cert, key };
}

async function loadError(file: string): Promise<string> {
  try {
    await loadInventory(file);
  } catch (e) {
    assert.ok(e instanceof InventoryError, String(e));
    return e.message;
  }
  assert.fail('expected the inventory to be refused');
}

const lineOf = (file: string, text: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .findIndex((l) => l.includes(text)) + 1;

test('tls: {} generates a self-signed ECDSA certificate for the cluster name and the VIP once, mode 0600, and keeps it', async () => {
  const file = inventory('{ tls: {} }');
  const inv = await loadInventory(file);
  const tls = inv.roles.proxy.tls!;
  assert.equal(tls.port, 443);
  assert.equal(tls.redirect, false);
  assert.deepEqual(tls.source, { kind: 'generated', file: generatedTlsPathFor(file) });
  assert.equal(statSync(generatedTlsPathFor(file)).mode & 0o777, 0o600);
  const x = new X509Certificate(tls.certificate);
  assert.equal(x.subjectAltName, 'DNS:webfarm, IP Address:10.213.0.100');
  assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.ok(x.checkPrivateKey(createPrivateKey(tls.pem)), 'the PEM for the LBs holds the key of the certificate');
  assert.doesNotMatch(tls.certificate, /PRIVATE KEY/);
  assert.deepEqual(tls.names, ['webfarm']);
  // the key is among what output redaction hides
  const keyLine = tls.pem.split('\n').find((l) => l.length > 40 && !l.startsWith('-') && !tls.certificate.includes(l))!;
  assert.ok(secretValues(inv).includes(keyLine));

  const again = await loadInventory(file);
  assert.equal(again.roles.proxy.tls!.pem, tls.pem, 'a second load keeps the certificate');
});

test('tls: a generated certificate is made anew when the names it must carry change', async () => {
  const file = inventory('{ tls: {} }');
  const first = (await loadInventory(file)).roles.proxy.tls!;
  writeFileSync(
    file,
    readFileSync(file, 'utf8').replace('{ tls: {} }', '{ tls: { names: [www.example.org, example.org], redirect: true } }'),
  );
  const second = (await loadInventory(file)).roles.proxy.tls!;
  assert.notEqual(second.fingerprint, first.fingerprint);
  assert.equal(new X509Certificate(second.certificate).subjectAltName, 'DNS:www.example.org, DNS:example.org, IP Address:10.213.0.100');
  assert.equal(second.redirect, true);
});

test('tls: a client trusting the old and the new generated certificate (same name) finds the new one by its key identifier', async () => {
  const file = inventory('{ tls: { names: [webfarm, a.example.org] } }');
  const first = (await loadInventory(file)).roles.proxy.tls!;
  writeFileSync(file, readFileSync(file, 'utf8').replace('a.example.org', 'b.example.org'));
  const second = (await loadInventory(file)).roles.proxy.tls!;
  assert.equal(new X509Certificate(first.certificate).subject, new X509Certificate(second.certificate).subject);
  const server = createServer({ cert: second.pem, key: second.pem }, (_q, r) => r.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const status = await new Promise<number | string>((done) =>
      get(
        {
          host: '127.0.0.1',
          port: (server.address() as AddressInfo).port,
          servername: 'b.example.org',
          ca: first.certificate + second.certificate,
          agent: false,
        },
        (r) => {
          r.resume();
          done(r.statusCode ?? 0);
        },
      ).on('error', (e) => done(e.message)),
    );
    assert.equal(status, 200, 'trusted with the old certificate first in the list');
  } finally {
    server.close();
  }
});

test('tls: without permission to create, a missing generated certificate is an error naming its file', async () => {
  const file = inventory('{ tls: {} }');
  await loadInventory(file); // the secrets file
  rmSync(generatedTlsPathFor(file));
  await assert.rejects(loadInventory(file, { createSecrets: false }), /inventory\.tls\.pem: missing/);
});

test('tls: a generated certificate readable by others is refused with the chmod that fixes it', async () => {
  const file = inventory('{ tls: {} }');
  await loadInventory(file);
  chmodSync(generatedTlsPathFor(file), 0o644);
  assert.match(await loadError(file), /inventory\.tls\.pem: mode 0644 is too open .* chmod 600/);
});

test("tls: the user's certificate and key (relative to the inventory) are taken as they are, chain and key in one PEM", async () => {
  const file = inventory('{ tls: { certificate: site.crt, key: site.key, port: 8443 } }');
  const { cert, key } = userCert(dirname(file), 'site');
  const tls = (await loadInventory(file)).roles.proxy.tls!;
  assert.deepEqual(tls.source, { kind: 'files', certificate: cert, key });
  assert.equal(tls.port, 8443);
  assert.equal(tls.certificate.trim(), readFileSync(cert, 'utf8').trim());
  assert.ok(tls.pem.includes(readFileSync(key, 'utf8').trim()));
  assert.deepEqual(tls.names, ['site']);
});

test('tls: one file holding both certificate and key is enough', async () => {
  const file = inventory('{ tls: { certificate: both.pem } }');
  const { cert, key } = userCert(dirname(file), 'both');
  writeFileSync(join(dirname(file), 'both.pem'), readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'), { mode: 0o600 });
  assert.ok((await loadInventory(file)).roles.proxy.tls!.pem.includes('PRIVATE KEY'));
});

test('tls: a key that belongs to another certificate is refused at the key line', async () => {
  const file = inventory('{ tls: { certificate: a.crt, key: b.key } }');
  userCert(dirname(file), 'a');
  userCert(dirname(file), 'b');
  const msg = await loadError(file);
  assert.match(
    msg,
    new RegExp(
      `inventory\\.yaml:${lineOf(file, 'b.key')}:\\d+: roles\\.proxy\\.tls\\.key: the key in .*b\\.key does not belong to the certificate in .*a\\.crt`,
    ),
  );
  assert.doesNotMatch(msg, /BEGIN|PRIVATE KEY-----/);
});

test('tls: bad files are refused, each naming the field and the file', async () => {
  const cases: [string, (dir: string) => void, RegExp][] = [
    [
      '{ tls: { certificate: none.crt, key: none.key } }',
      () => {},
      /roles\.proxy\.tls\.certificate: cannot read .*none\.crt: no such file/,
    ],
    [
      '{ tls: { certificate: x.crt, key: x.key } }',
      (d) => {
        userCert(d, 'x');
        chmodSync(join(d, 'x.key'), 0o644);
      },
      /roles\.proxy\.tls\.key: .*x\.key holds a private key and its mode 0644 lets group or others read it: run chmod 600/,
    ],
    [
      '{ tls: { certificate: junk.crt, key: junk.key } }',
      (d) => {
        writeFileSync(join(d, 'junk.crt'), 'not a certificate\n');
        writeFileSync(join(d, 'junk.key'), 'x', { mode: 0o600 });
      },
      /roles\.proxy\.tls\.certificate: .*junk\.crt holds no certificate/,
    ],
    [
      '{ tls: { certificate: nokey.crt } }',
      (d) => userCert(d, 'nokey'),
      /roles\.proxy\.tls\.certificate: .*nokey\.crt holds no private key: give its file as key:/,
    ],
    [
      '{ tls: { certificate: e.crt, key: e.key } }',
      (d) => {
        userCert(d, 'e');
        execFileSync('openssl', ['pkey', '-in', join(d, 'e.key'), '-out', join(d, 'e.enc'), '-aes256', '-passout', 'pass:secret1234'], {
          stdio: 'pipe',
        });
        renameSync(join(d, 'e.enc'), join(d, 'e.key'));
        chmodSync(join(d, 'e.key'), 0o600);
      },
      /roles\.proxy\.tls\.key: .*e\.key holds an encrypted private key: the proxy needs it unencrypted/,
    ],
    ['{ tls: { certificate: r.crt, key: r.key } }', (d) => userCert(d, 'r', { rsa: true }), /^$/],
  ];
  for (const [proxy, setup, want] of cases) {
    const file = inventory(proxy);
    setup(dirname(file));
    if (want.source === '^$') {
      assert.ok((await loadInventory(file)).roles.proxy.tls, 'an RSA certificate is taken too');
      continue;
    }
    assert.match(await loadError(file), want, proxy);
  }
});

test('tls: an expired certificate is refused with its date', async () => {
  const file = inventory('{ tls: { certificate: old.crt, key: old.key } }');
  userCert(dirname(file), 'old', { days: 1 });
  const src = new YamlSource(file, readFileSync(file, 'utf8'));
  const later = new Date(Date.now() + 3 * 86_400_000);
  const ctx = {
    src,
    inventoryFile: file,
    displayGenerated: generatedTlsPathFor(file),
    cluster: 'webfarm',
    vip: '10.213.0.100',
    create: false,
    expand: (p: string) => join(dirname(file), p),
    now: later,
  };
  await assert.rejects(loadTls({ port: 443, redirect: false, certificate: 'old.crt', key: 'old.key' }, ctx), (e: Error) => {
    assert.match(
      e.message,
      new RegExp(
        `inventory\\.yaml:${lineOf(file, 'old.crt')}:\\d+: roles\\.proxy\\.tls\\.certificate: the certificate in .*old\\.crt expired on \\d{4}-\\d\\d-\\d\\d`,
      ),
    );
    return true;
  });
});

test('tls: conflicting settings are refused before any file is read', async () => {
  const cases: [string, RegExp][] = [
    ['{ port: 443, tls: {} }', /roles\.proxy\.tls: the HTTPS port 443 is also the service port/],
    ['{ tls: { port: 80 } }', /roles\.proxy\.tls\.port: the HTTPS port 80 is also the service port/],
    ['{ stats: { port: 8443 }, tls: { port: 8443 } }', /roles\.proxy\.tls\.port: the HTTPS port 8443 is also the stats port/],
    ['{ tls: { key: a.key } }', /roles\.proxy\.tls\.key: a key without its certificate/],
    ['{ tls: { certificate: a.crt, names: [a.example.org] } }', /roles\.proxy\.tls\.names: names are for the generated certificate only/],
    [
      '{ tls: { port: 8443, redirect: true } }',
      /roles\.proxy\.tls\.redirect: a redirect to HTTPS keeps the host name, so the client comes to port 443, not 8443/,
    ],
    ['{ tls: { names: [-bad-] } }', /roles\.proxy\.tls\.names\[0\]: expected a DNS name/],
    ['{ tls: { redirect: yes } }', /roles\.proxy\.tls\.redirect: expected true or false/],
    ['{ tls: { crt: a.pem } }', /roles\.proxy\.tls\.crt: unknown key/],
  ];
  for (const [proxy, want] of cases) {
    const file = inventory(proxy);
    assert.match(await loadError(file), want, proxy);
    assert.throws(() => statSync(generatedTlsPathFor(file)), /ENOENT/, 'nothing generated for a refused inventory');
  }
});
