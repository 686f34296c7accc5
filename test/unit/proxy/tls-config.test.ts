// bind ... ssl: certificates read and checked when the configuration is parsed (names from CN and SANs, a key in
// the file or beside it), the TLS options HTTPS needs, and each unsupported one refused by name (-c says which).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, formatAlert, parseConfig } from '../../../runtime/proxy/config.ts';
import { prerequisites, commandUnavailable } from '../../helpers/env.ts';

function cert(dir: string, name: string, cn: string, sans: string[]): { crt: string; key: string } {
  const crt = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const r = spawnSync(
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
      key,
      '-out',
      crt,
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      `subjectAltName=${sans.map((s) => `DNS:${s}`).join(',')}`,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return { crt, key };
}

const cfg = (bind: string, extra = '') =>
  `global\n${extra}defaults\n    mode http\nfrontend f\n    bind 127.0.0.1:443 ${bind}\n    default_backend b\nbackend b\n    server s 127.0.0.1:8080\n`;
const parse = (text: string) => parseConfig([{ file: 't.cfg', text }]);
const refused = (text: string): string[] => {
  try {
    parse(text);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.alerts.map((a) => formatAlert(a));
  }
  return [];
};

test('bind ssl crt: chain and key read at parse time, names from CN and subjectAltName, defaults and options', (t) => {
  if (!prerequisites(t, commandUnavailable('openssl'))) return;
  const dir = mkdtempSync(join(tmpdir(), 'proxy-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const a = cert(dir, 'a', 'a.test', ['a.test', '*.a.test']);
  const pem = join(dir, 'a.pem');
  writeFileSync(pem, readFileSync(a.crt, 'utf8') + readFileSync(a.key, 'utf8'));
  const c = parse(cfg(`ssl crt ${pem} alpn http/1.1 ssl-min-ver TLSv1.3 strict-sni`));
  const tls = c.proxies[0].binds[0].tls!;
  assert.deepEqual(
    tls.certs.map((x) => x.names),
    [['a.test', '*.a.test']],
  );
  assert.deepEqual([tls.alpn, tls.minVersion, tls.strictSni], [['http/1.1'], 'TLSv1.3', true]);
  assert.match(tls.ciphers, /^ECDHE-ECDSA-AES128-GCM-SHA256:/, 'modern defaults');
  // the key beside the certificate (FILE.key), crt-base, and the global defaults
  writeFileSync(join(dir, 'b.pem'), readFileSync(a.crt, 'utf8'));
  writeFileSync(join(dir, 'b.pem.key'), readFileSync(a.key, 'utf8'));
  const d = parse(
    cfg(
      'ssl crt b.pem',
      `    crt-base ${dir}\n    ssl-default-bind-ciphers ECDHE-RSA-AES128-GCM-SHA256\n    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets\n`,
    ),
  );
  const dt = d.proxies[0].binds[0].tls!;
  assert.deepEqual(
    [dt.ciphers, dt.minVersion, dt.noTickets, dt.certs[0].file],
    ['ECDHE-RSA-AES128-GCM-SHA256', 'TLSv1.2', true, join(dir, 'b.pem')],
  );
  // a key that is not the certificate's
  const other = cert(dir, 'o', 'o.test', ['o.test']);
  writeFileSync(join(dir, 'bad.pem'), readFileSync(a.crt, 'utf8') + readFileSync(other.key, 'utf8'));
  assert.match(
    refused(cfg(`ssl crt ${join(dir, 'bad.pem')}`))[0],
    /\[t\.cfg:5\] : 'bind' : inconsistencies between private key and certificate loaded from PEM file/,
  );
  assert.match(refused(cfg(`ssl crt ${join(dir, 'none.pem')}`))[0], /unable to load SSL certificate file '.*none\.pem': ENOENT/);
  assert.match(refused(cfg(`ssl crt ${a.crt}`))[0], /unable to load SSL private key/);
});

test('TLS keywords this proxy does not have are refused by name; rules on ssl_fc', () => {
  assert.match(refused(cfg('ssl'))[0], /'ssl' : missing 'crt'/);
  assert.match(refused(cfg('crt /x.pem'))[0], /need 'ssl'/);
  assert.match(refused(cfg('ssl crt /x.pem alpn h2,http/1.1'))[0], /'alpn h2' : HTTP\/2 is not supported/);
  assert.match(refused(cfg('ssl crt-list /x.txt'))[0], /'crt-list' : crt-list files are not supported/);
  assert.match(refused(cfg('ssl crt /x.pem ocsp-update on'))[0], /'ocsp-update' : OCSP stapling is not supported/);
  assert.match(refused(cfg('ssl crt /x.pem verify required'))[0], /client certificates are not supported/);
  assert.match(refused(cfg('ssl crt /x.pem ssl-min-ver SSLv3'))[0], /SSLv3' is not supported/);
  assert.match(refused(cfg('tfo'))[0], /unsupported bind option 'tfo'/);
  const rules = (line: string) =>
    `defaults\n    mode http\nfrontend f\n    bind 127.0.0.1:80\n    ${line}\n    default_backend b\nbackend b\n    server s 127.0.0.1:8080\n`;
  const r = parse(rules('http-request redirect scheme https unless { ssl_fc }')).proxies[0].httpRules[0];
  assert.deepEqual(
    [r.action, r.action === 'redirect-scheme' && r.code, r.cond?.unless, r.cond?.groups[0][0].acls[0].fetch],
    ['redirect-scheme', 302, true, 'ssl_fc'],
  );
  const r2 = parse(rules('redirect scheme https code 301 if !{ ssl_fc }')).proxies[0].httpRules[0];
  assert.deepEqual([r2.action === 'redirect-scheme' && r2.code, r2.cond?.groups[0][0].negate], [301, true]);
  const h = parse(rules('http-request set-header X-Forwarded-Proto https if { ssl_fc }')).proxies[0].httpRules[0];
  assert.deepEqual(
    [h.action, h.action === 'set-header' && h.name, h.action === 'set-header' && h.value],
    ['set-header', 'X-Forwarded-Proto', 'https'],
  );
  assert.match(refused(rules('http-request set-header X-Client %[src]'))[0], /log-format expressions in the value are not supported/);
  assert.match(refused(rules('http-request deny'))[0], /unsupported 'http-request' action 'deny'/);
  assert.match(refused(rules('acl t ssl_fc yes'))[0], /'ssl_fc' takes no value/);
});
