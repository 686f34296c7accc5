// HTTPS: `bind ... ssl crt FILE|DIR [crt ...] [alpn http/1.1] [ssl-min-ver V] [ssl-max-ver V] [ciphers L]
// [ciphersuites L] [strict-sni]` and the global ssl-default-bind-* / crt-base defaults, with HAProxy's certificate
// files (a PEM with the chain and the key, or the key beside it in FILE.key; a directory: every certificate in it,
// chosen by SNI from their names). The files are read, checked and kept in the configuration when it is parsed, so
// that `-c` says what is wrong with them and a reload rereads them.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { TlsBind, TlsCert, TlsDefaults } from './config-types.ts';

// HAProxy 2.6's documented recommendation (Mozilla's "intermediate" profile, without DHE: no dh-param here)
export const DEFAULT_CIPHERS =
  'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305';
export const DEFAULT_CIPHERSUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

const VERSIONS = ['SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
type Version = TlsBind['minVersion'];

function version(v: string | undefined, what: string): Version {
  if (v === 'SSLv3') throw new Error(`'${what} SSLv3' is not supported (TLSv1.0 at the least)`);
  if (!v || !VERSIONS.includes(v)) throw new Error(`'${what}' expects TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3, got '${v ?? ''}'`);
  return (v === 'TLSv1.0' ? 'TLSv1' : v) as Version;
}

// bind options of HAProxy 2.6 this proxy does not have, refused by name
const REFUSED: Record<string, string> = {
  'crt-list': 'crt-list files are not supported: name the certificate files or a directory with crt',
  'ocsp-update': 'OCSP stapling is not supported',
  ca_file: 'client certificates are not supported',
  'ca-file': 'client certificates are not supported',
  verify: 'client certificates are not supported',
  'crl-file': 'client certificates are not supported',
  npn: 'NPN is not supported (use alpn http/1.1)',
  'allow-0rtt': 'TLS early data (0-RTT) is not supported',
  curves: "'curves' is not supported: OpenSSL's defaults apply",
  ecdhe: "'ecdhe' is not supported: OpenSSL's defaults apply",
  'force-sslv3': 'SSLv3 is not supported',
  'tls-ticket-keys': "'tls-ticket-keys' is not supported",
  'generate-certificates': "'generate-certificates' is not supported",
  'accept-proxy': 'the PROXY protocol is not supported',
  proto: "'proto' is not supported (HTTP/1.1 only)",
};

/** The DNS names a certificate serves (CN and subjectAltName DNS entries), lower case. */
function namesOf(x: X509Certificate): string[] {
  const names = new Set<string>();
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject)?.[1];
  if (cn) names.add(cn.trim().toLowerCase());
  for (const part of (x.subjectAltName ?? '').split(',')) {
    const m = /^\s*DNS:(.+)$/.exec(part);
    if (m) names.add(m[1].trim().toLowerCase());
  }
  return [...names];
}

/** A certificate file: the chain and the key (in the file, or in FILE.key), checked to belong together. */
function loadCert(file: string): TlsCert {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`unable to load SSL certificate file '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      cause: e,
    });
  }
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!certs) throw new Error(`unable to load SSL certificate file '${file}': no certificate in it`);
  let key = /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]+?-----END (?:[A-Z]+ )?PRIVATE KEY-----/.exec(pem)?.[0];
  if (!key && existsSync(`${file}.key`)) key = readFileSync(`${file}.key`, 'utf8');
  if (!key) throw new Error(`unable to load SSL private key from PEM file '${file}' (nor from '${file}.key')`);
  let x: X509Certificate;
  try {
    x = new X509Certificate(certs[0]);
    if (!x.checkPrivateKey(createPrivateKey(key))) throw new Error('the private key does not match the certificate');
    createSecureContext({ cert: certs.join('\n'), key });
  } catch (e) {
    throw new Error(`inconsistencies between private key and certificate loaded from PEM file '${file}': ${(e as Error).message}`, {
      cause: e,
    });
  }
  return { file, cert: certs.join('\n'), key, names: namesOf(x) };
}

/** crt FILE|DIR: the certificates it names (a directory: every file in it, by name, but keys and OCSP files). */
function loadCrt(path: string, base: string | undefined): TlsCert[] {
  const p = base && !isAbsolute(path) ? join(base, path) : path;
  let dir = false;
  try {
    dir = statSync(p).isDirectory();
  } catch {}
  if (!dir) return [loadCert(p)];
  const files = readdirSync(p)
    .filter((f) => !/\.(key|ocsp|issuer|sctl)$/.test(f) && !f.startsWith('.'))
    .sort()
    .map((f) => join(p, f))
    .filter((f) => statSync(f).isFile());
  if (files.length === 0) throw new Error(`no certificate in directory '${p}'`);
  return files.map(loadCert);
}

/** The TLS words of a bind line (after the address): null when there is no `ssl`. */
export function parseBindTls(words: string[], defaults: TlsDefaults): TlsBind | null {
  let ssl = false;
  const crts: string[] = [];
  const t: Omit<TlsBind, 'certs'> = {
    minVersion: defaults.minVersion ?? 'TLSv1.2',
    maxVersion: defaults.maxVersion,
    ciphers: defaults.ciphers ?? DEFAULT_CIPHERS,
    ciphersuites: defaults.ciphersuites ?? DEFAULT_CIPHERSUITES,
    strictSni: false,
    noTickets: defaults.noTickets ?? false,
  };
  for (let i = 0; i < words.length; i++) {
    const k = words[i];
    const arg = () => {
      const v = words[++i];
      if (v === undefined) throw new Error(`'${k}' : missing value`);
      return v;
    };
    if (k === 'ssl') ssl = true;
    else if (k === 'crt') crts.push(arg());
    else if (k === 'alpn') {
      const list = arg().split(',');
      const bad = list.filter((x) => x !== 'http/1.1' && x !== 'http/1.0');
      if (bad.length)
        throw new Error(
          `'alpn ${bad.join(',')}' : ${bad.includes('h2') ? 'HTTP/2 is not supported' : 'only http/1.1 (and http/1.0) can be offered'}`,
        );
      t.alpn = list;
    } else if (k === 'ssl-min-ver') t.minVersion = version(arg(), k);
    else if (k === 'ssl-max-ver') t.maxVersion = version(arg(), k);
    else if (k === 'ciphers') t.ciphers = arg();
    else if (k === 'ciphersuites') t.ciphersuites = arg();
    else if (k === 'strict-sni') t.strictSni = true;
    else if (k === 'no-tls-tickets') t.noTickets = true;
    else if (REFUSED[k]) throw new Error(`'${k}' : ${REFUSED[k]}`);
    else throw new Error(`unsupported bind option '${k}'`);
  }
  if (!ssl) {
    if (crts.length || t.alpn) throw new Error("'crt' and 'alpn' need 'ssl' on the bind line");
    return null;
  }
  if (crts.length === 0) throw new Error("'ssl' : missing 'crt' (a certificate file or a directory of them)");
  const certs = crts.flatMap((c) => loadCrt(c, defaults.crtBase));
  // a bad cipher list is OpenSSL's to refuse: said now rather than at the first connection
  try {
    createSecureContext({ ciphers: `${t.ciphers}:${t.ciphersuites}`, minVersion: t.minVersion, maxVersion: t.maxVersion });
  } catch (e) {
    throw new Error(`invalid ciphers, ciphersuites or versions: ${(e as Error).message}`, { cause: e });
  }
  return { ...t, certs };
}

/** `ssl-default-bind-options`: the version bounds among them (no-sslv3 and the like are accepted as they are). */
export function parseTlsOptions(words: string[], d: TlsDefaults): void {
  for (let i = 0; i < words.length; i++) {
    const k = words[i];
    if (k === 'ssl-min-ver') d.minVersion = version(words[++i], k);
    else if (k === 'ssl-max-ver') d.maxVersion = version(words[++i], k);
    else if (k === 'no-sslv3' || k === 'no-tlsv10' || k === 'no-tlsv11') {
      const floor = k === 'no-sslv3' ? 'TLSv1' : k === 'no-tlsv10' ? 'TLSv1.1' : 'TLSv1.2';
      const order = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
      if (order.indexOf(d.minVersion ?? 'TLSv1.2') < order.indexOf(floor)) d.minVersion = floor as Version;
    } else if (k === 'no-tls-tickets') d.noTickets = true;
    else throw new Error(`unsupported ssl-default-bind-options '${k}'`);
  }
}
