// HTTPS on the VIP (roles.proxy.tls): the certificate the load balancers serve, read from the user's
// files (checked: a certificate, a key that matches it, not expired) or, when none is given, a
// self-signed one generated once beside the secrets file (<basename>.tls.pem, mode 0600) and kept.
// Errors name the inventory's line and field, or the file that is wrong; no key ever reaches a message.
import { X509Certificate, createPrivateKey, type KeyObject, type webcrypto as WebCrypto } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InventoryError, type InventoryIssue, type PathSegment, type YamlSource } from './errors.ts';
import { createAtomically, replaceAtomically } from './atomic.ts';
import type { ParsedInventoryFile } from './schema.ts';
import type { TlsOptions } from './types.ts';

/** roles.proxy.tls as the schema leaves it. */
export type TlsFileFields = NonNullable<ParsedInventoryFile['roles']['proxy']['tls']>;

/** A generated certificate is renewed this long before it expires (and lives GENERATED_DAYS). */
const RENEW_BEFORE_DAYS = 30;
const GENERATED_DAYS = 825;
const DAY_MS = 86_400_000;

const CERT_RE = /-----BEGIN CERTIFICATE-----\r?\n[\s\S]*?-----END CERTIFICATE-----/g;
const KEY_RE = /-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----\r?\n[\s\S]*?-----END \1-----/;

/** The generated certificate's file: inventory.yaml -> inventory.tls.pem, in the same folder. */
export function generatedTlsPathFor(inventoryFile: string): string {
  return join(dirname(inventoryFile), `${basename(inventoryFile).replace(/\.ya?ml$/i, '')}.tls.pem`);
}

/** The base64 lines of a PEM private key: what a redactor must hide should one ever reach output. */
export function keyLines(pem: string): string[] {
  const m = KEY_RE.exec(pem);
  return m ? m[0].split(/\r?\n/).filter((l) => l.length >= 16 && !l.startsWith('-----')) : [];
}

interface Parsed {
  certs: { pem: string; x509: X509Certificate }[];
  key?: { pem: string; object: KeyObject };
}

/** Certificates and key of a PEM text; why not, as a sentence (never quoting the key). */
function parsePem(text: string): Parsed | string {
  const certs: Parsed['certs'] = [];
  for (const m of text.matchAll(CERT_RE)) {
    try {
      certs.push({ pem: m[0], x509: new X509Certificate(m[0]) });
    } catch (e) {
      return `holds a certificate OpenSSL cannot read (${(e as Error).message})`;
    }
  }
  const k = KEY_RE.exec(text);
  if (!k) return { certs };
  if (k[1] === 'ENCRYPTED PRIVATE KEY')
    return 'holds an encrypted private key: the proxy needs it unencrypted (as HAProxy does), e.g. openssl pkey -in KEY -out KEY.pem';
  try {
    return { certs, key: { pem: k[0], object: createPrivateKey(k[0]) } };
  } catch {
    return 'holds a private key OpenSSL cannot read (or one protected by a passphrase: the proxy needs it unencrypted)';
  }
}

const fingerprint = (x: X509Certificate) => x.fingerprint256;
const names = (x: X509Certificate): { dns: string[]; ip: string[] } => {
  const alt = (x.subjectAltName ?? '').split(/,\s*/).filter(Boolean);
  return {
    dns: alt.filter((a) => a.startsWith('DNS:')).map((a) => a.slice(4)),
    ip: alt.filter((a) => a.startsWith('IP Address:')).map((a) => a.slice(11)),
  };
};

function material(certs: Parsed['certs'], key: NonNullable<Parsed['key']>, source: TlsOptions['source'], f: TlsFileFields): TlsOptions {
  const leaf = certs[0].x509;
  const chain = certs.map((c) => c.pem).join('\n') + '\n';
  return {
    port: f.port,
    redirect: f.redirect,
    certificate: chain,
    pem: `${chain}${key.pem}\n`,
    source,
    fingerprint: fingerprint(leaf),
    notAfter: new Date(leaf.validTo).toISOString(),
    names: names(leaf).dns,
  };
}

export interface TlsContext {
  src: YamlSource;
  /** The inventory file's absolute path (the generated file sits beside it). */
  inventoryFile: string;
  /** How errors name the generated file (as the caller named the inventory). */
  displayGenerated: string;
  cluster: string;
  vip: string;
  /** Generate (or renew) the self-signed certificate when needed. */
  create: boolean;
  expand: (p: string) => string;
  now?: Date;
}

const AT: PathSegment[] = ['roles', 'proxy', 'tls'];

/** roles.proxy.tls: the user's files checked, or the generated certificate (made once, renewed when due). */
export async function loadTls(f: TlsFileFields, ctx: TlsContext): Promise<TlsOptions> {
  const now = ctx.now ?? new Date();
  if (f.certificate === undefined) return generated(f, ctx, now);

  const issue = (field: 'certificate' | 'key', message: string): InventoryIssue => ctx.src.issue([...AT, field], message);
  const read = async (field: 'certificate' | 'key', given: string, secret: boolean): Promise<string> => {
    const path = ctx.expand(given);
    const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
      throw new InventoryError([issue(field, `cannot read ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`)]);
    });
    if (!st.isFile()) throw new InventoryError([issue(field, `${path} is not a regular file`)]);
    if (secret && (st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw new InventoryError([
        issue(field, `${path} holds a private key and its mode ${mode} lets group or others read it: run chmod 600 ${path}`),
      ]);
    }
    return readFile(path, 'utf8').catch((e: Error) => {
      throw new InventoryError([issue(field, `cannot read ${path}: ${e.message}`)]);
    });
  };

  const certPath = ctx.expand(f.certificate);
  const certText = await read('certificate', f.certificate, false);
  const cert = parsePem(certText);
  if (typeof cert === 'string') throw new InventoryError([issue('certificate', `${certPath} ${cert}`)]);
  if (!cert.certs.length)
    throw new InventoryError([issue('certificate', `${certPath} holds no certificate (a PEM block "-----BEGIN CERTIFICATE-----")`)]);
  if (cert.key && f.key === undefined && (await stat(certPath)).mode & 0o077)
    throw new InventoryError([
      issue('certificate', `${certPath} holds a private key and lets group or others read it: run chmod 600 ${certPath}`),
    ]);

  let key = cert.key;
  let keyPath = certPath;
  if (f.key !== undefined) {
    keyPath = ctx.expand(f.key);
    const k = parsePem(await read('key', f.key, true));
    if (typeof k === 'string') throw new InventoryError([issue('key', `${keyPath} ${k}`)]);
    if (!k.key) throw new InventoryError([issue('key', `${keyPath} holds no private key (a PEM block "-----BEGIN PRIVATE KEY-----")`)]);
    key = k.key;
  }
  if (!key) throw new InventoryError([issue('certificate', `${certPath} holds no private key: give its file as key:`)]);

  const leaf = cert.certs[0].x509;
  const field = f.key !== undefined ? 'key' : 'certificate';
  if (!leaf.checkPrivateKey(key.object))
    throw new InventoryError([
      issue(field, `the key in ${keyPath} does not belong to the certificate in ${certPath} (${leaf.subject.replace(/\n/g, ', ')})`),
    ]);
  const until = new Date(leaf.validTo);
  if (until <= now)
    throw new InventoryError([issue('certificate', `the certificate in ${certPath} expired on ${until.toISOString().slice(0, 10)}`)]);
  if (new Date(leaf.validFrom) > now)
    throw new InventoryError([
      issue(
        'certificate',
        `the certificate in ${certPath} is valid only from ${new Date(leaf.validFrom).toISOString()} (is this machine's clock right?)`,
      ),
    ]);
  return material(cert.certs, key, { kind: 'files', certificate: certPath, key: keyPath }, f);
}

/** The names a generated certificate carries: the inventory's (default: the cluster's), and the VIP. */
const wantedNames = (f: TlsFileFields, ctx: TlsContext) => ({ dns: f.names ?? [ctx.cluster], ip: [ctx.vip] });

async function generated(f: TlsFileFields, ctx: TlsContext, now: Date): Promise<TlsOptions> {
  const file = generatedTlsPathFor(ctx.inventoryFile);
  const shown = ctx.displayGenerated;
  const fileError = (message: string) => new InventoryError([{ file: shown, line: 0, col: 0, path: '', message }]);
  const want = wantedNames(f, ctx);
  const source: TlsOptions['source'] = { kind: 'generated', file };

  const st = await stat(file).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw fileError(`cannot read the generated certificate: ${e.message}`);
  });
  if (st) {
    if (!st.isFile()) throw fileError('not a regular file');
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw fileError(`mode ${mode} is too open for a file holding a private key (group or others may read it): run chmod 600 ${shown}`);
    }
    const p = parsePem(await readFile(file, 'utf8'));
    if (typeof p === 'string') throw fileError(`${p}; delete it to have a new one generated`);
    if (!p.certs.length || !p.key || !p.certs[0].x509.checkPrivateKey(p.key.object))
      throw fileError('is not a certificate and its key (delete it to have a new one generated)');
    const leaf = p.certs[0].x509;
    const has = names(leaf);
    const same = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x));
    const due = new Date(leaf.validTo).getTime() - now.getTime() < RENEW_BEFORE_DAYS * DAY_MS;
    // kept while it names what the inventory asks and is not about to expire; else made anew
    if (same(has.dns, want.dns) && same(has.ip, want.ip) && !due) return material(p.certs, p.key, source, f);
    if (!ctx.create)
      throw fileError(
        `names ${[...has.dns, ...has.ip].join(', ')}${due ? ` and expires on ${leaf.validTo}` : ''}: it is renewed when hasetup may write it`,
      );
  } else if (!ctx.create) {
    throw fileError('missing (the self-signed certificate is generated when hasetup is allowed to create it)');
  }

  const text = await selfSigned(want, now);
  try {
    if (st) await replaceAtomically(file, text);
    else if (!(await createAtomically(file, text))) return generated(f, { ...ctx, create: false }, now);
  } catch (e) {
    throw fileError(`cannot write the generated certificate: ${(e as Error).message}`);
  }
  return generated(f, { ...ctx, create: false }, now);
}

/** A self-signed ECDSA P-256 certificate (the handshake both engines do fastest) and its key, in one PEM. */
async function selfSigned(want: { dns: string[]; ip: string[] }, now: Date): Promise<string> {
  // loaded only here: most runs never generate a certificate
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  const { webcrypto, randomBytes } = await import('node:crypto');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as WebCrypto.CryptoKeyPair;
  const publicKey = keys.publicKey as unknown as Parameters<typeof x509.SubjectKeyIdentifierExtension.create>[0];
  const serial = randomBytes(16);
  serial[0] &= 0x7f; // a positive serial number
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: `CN=${want.dns[0]}`,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + GENERATED_DAYS * DAY_MS),
    signingAlgorithm: alg,
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    extensions: [
      // key identifiers: a client trusting several of these certificates (all named CN=<name>) finds
      // the right one by its key, not the first one of that name
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(publicKey),
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...want.dns.map((value) => ({ type: 'dns' as const, value })),
        ...want.ip.map((value) => ({ type: 'ip' as const, value })),
      ]),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return (
    '# Generated by hasetup: the self-signed certificate the load balancers serve on HTTPS (the clients\n' +
    '# that should trust it need only the certificate part). Delete this file for a new one.\n' +
    `${cert.toString('pem')}\n${x509.PemConverter.encode(pkcs8, 'PRIVATE KEY')}\n`
  );
}
