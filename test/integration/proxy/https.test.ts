// HTTPS on the proxy, judged against HAProxy 2.6 on the same configuration: certificates from a directory chosen
// by SNI (exact names, wildcards, the first one by default), ALPN http/1.1, ssl-min-ver, the redirect to HTTPS
// unless ssl_fc, X-Forwarded-Proto set with http-request set-header if ssl_fc, option forwardfor over TLS,
// keep-alive over TLS; then, ours alone, certificates replaced and reread on reload without dropping what is in flight.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import tls from 'node:tls';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prerequisites, commandUnavailable } from '../../helpers/env.ts';
import { canConnect, fakeBackend, freePort, get, makeCert, startProxy, tmpDir, until, type FakeBackend } from './helpers.ts';

interface TlsAnswer {
  cn: string;
  fingerprint: string;
  alpn: string | false;
  version: string;
  responses: string[];
}

/** One TLS connection: the certificate the server chose, ALPN, the version, and the answers to `requests` (in turn). */
function tlsRequests(
  port: number,
  opts: { servername?: string; alpn?: string[]; maxVersion?: tls.SecureVersion },
  requests: string[],
): Promise<TlsAnswer> {
  return new Promise((res, rej) => {
    const s = tls.connect({
      port,
      host: '127.0.0.1',
      servername: opts.servername,
      rejectUnauthorized: false,
      ALPNProtocols: opts.alpn,
      maxVersion: opts.maxVersion,
    });
    const answer: TlsAnswer = { cn: '', fingerprint: '', alpn: false, version: '', responses: [] };
    let buf = '';
    const next = () => {
      const r = requests[answer.responses.length];
      if (r === undefined) {
        s.end();
        res(answer);
      } else s.write(r);
    };
    s.setTimeout(8000, () => s.destroy(new Error('tls client timeout')));
    s.on('error', rej);
    s.on('secureConnect', () => {
      const c = s.getPeerCertificate();
      answer.cn = c.subject?.CN as string;
      answer.fingerprint = c.fingerprint256;
      answer.alpn = s.alpnProtocol ?? false;
      answer.version = s.getProtocol() ?? '';
      next();
    });
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      buf += d;
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        let total: number;
        if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
          const last = buf.indexOf('\r\n0\r\n\r\n', end);
          if (last < 0) return;
          total = last + 7;
        } else {
          total = end + 4 + Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          if (buf.length < total) return;
        }
        answer.responses.push(buf.slice(0, total));
        buf = buf.slice(total);
        next();
      }
    });
  });
}

const REQ = (path: string, host = 'a.test') => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;

function config(http: number, https: number, https13: number, certs: string, backend: number, threads: number): string {
  return `global
    nbthread ${threads}
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    option forwardfor
frontend web
    bind 127.0.0.1:${http}
    bind 127.0.0.1:${https} ssl crt ${certs} alpn http/1.1 ssl-min-ver TLSv1.2
    bind 127.0.0.1:${https13} ssl crt ${certs} ssl-min-ver TLSv1.3
    http-request redirect scheme https code 301 if !{ ssl_fc } { path_beg /secure }
    http-request set-header X-Forwarded-Proto https if { ssl_fc }
    default_backend app
backend app
    server s1 127.0.0.1:${backend}
`;
}

interface Seen {
  sni: Record<string, string>;
  alpn: string | false;
  v12on13: string;
  v13: string;
  redirect: { status: number; location: string | undefined };
  overTls: { proto: string | undefined; xff: string | undefined; status: string };
  plain: { proto: string | undefined; xff: string | undefined };
  keepAlive: number;
}

async function scenario(b: FakeBackend, http: number, https: number, https13: number): Promise<Seen> {
  const sni: Record<string, string> = {};
  for (const name of ['a.test', 'www.a.test', 'b.test', 'x.b.test', 'unknown.test'])
    sni[name] = (await tlsRequests(https, { servername: name }, [])).cn;
  const alpn = (await tlsRequests(https, { servername: 'a.test', alpn: ['h2', 'http/1.1'] }, [])).alpn;
  const v12on13 = await tlsRequests(https13, { servername: 'a.test', maxVersion: 'TLSv1.2' }, []).then(
    (a) => a.version,
    (e: Error) => `refused (${e.message.split(':')[0]})`,
  );
  const v13 = (await tlsRequests(https13, { servername: 'a.test' }, [])).version;
  const r = await get(http, '/secure/p?q=1', { headers: { host: 'a.test' } });
  const before = b.requests.length;
  const t = await tlsRequests(https, { servername: 'a.test' }, [REQ('/tls')]);
  const seen = b.requests[before];
  await get(http, '/plain');
  const plain = b.requests[b.requests.length - 1];
  const ka = await tlsRequests(https, { servername: 'a.test' }, [REQ('/k1'), REQ('/k2'), REQ('/k3'), REQ('/k4'), REQ('/k5')]);
  return {
    sni,
    alpn,
    v12on13,
    v13,
    redirect: { status: r.status, location: r.headers.location },
    overTls: {
      proto: seen?.headers['x-forwarded-proto'] as string | undefined,
      xff: seen?.headers['x-forwarded-for'] as string | undefined,
      status: t.responses[0]?.split('\r\n')[0].split(' ')[1],
    },
    plain: { proto: plain.headers['x-forwarded-proto'] as string | undefined, xff: plain.headers['x-forwarded-for'] as string | undefined },
    keepAlive: ka.responses.filter((x) => x.startsWith('HTTP/1.1 200')).length,
  };
}

test('HTTPS: SNI, ALPN, versions, redirect, X-Forwarded-Proto and -For, keep-alive: as HAProxy 2.6', async (t) => {
  if (!prerequisites(t, commandUnavailable('haproxy', 'openssl'))) return;
  const dir = tmpDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const certs = join(dir, 'certs');
  mkdirSync(certs);
  makeCert(join(certs, 'a.pem'), 'a.test', ['a.test', 'www.a.test']);
  makeCert(join(certs, 'b.pem'), 'b.test', ['b.test', '*.b.test']);
  const b = await fakeBackend('app');
  t.after(() => b.close());
  const ports = { h: [await freePort(), await freePort(), await freePort()], o: [await freePort(), await freePort(), await freePort()] };
  const cfgH = join(dir, 'haproxy.cfg');
  writeFileSync(cfgH, config(ports.h[0], ports.h[1], ports.h[2], certs, b.port, 1));
  const hap = spawn('haproxy', ['-db', '-f', cfgH], { stdio: ['ignore', 'ignore', 'pipe'] });
  let hapErr = '';
  hap.stderr!.on('data', (d) => (hapErr += d));
  t.after(() => void hap.kill('SIGTERM'));
  await until(`haproxy listening (${hapErr})`, async () => (await canConnect(ports.h[1])) && canConnect(ports.h[0]));
  const ours = await startProxy(config(ports.o[0], ports.o[1], ports.o[2], certs, b.port, 2), ports.o[1]);
  t.after(() => ours.stop().then(() => undefined));

  const h = await scenario(b, ports.h[0], ports.h[1], ports.h[2]);
  const o = await scenario(b, ports.o[0], ports.o[1], ports.o[2]);
  // what HAProxy does, here (so that the comparison below compares something)
  assert.deepEqual(h.sni, {
    'a.test': 'a.test',
    'www.a.test': 'a.test',
    'b.test': 'b.test',
    'x.b.test': 'b.test',
    'unknown.test': 'a.test',
  });
  assert.equal(h.alpn, 'http/1.1');
  assert.match(h.v12on13, /^refused/);
  assert.equal(h.v13, 'TLSv1.3');
  assert.deepEqual(h.redirect, { status: 301, location: 'https://a.test/secure/p?q=1' });
  assert.deepEqual(h.overTls, { proto: 'https', xff: '127.0.0.1', status: '200' });
  assert.deepEqual(h.plain, { proto: undefined, xff: '127.0.0.1' });
  assert.equal(h.keepAlive, 5);
  assert.deepEqual(o, h);
});

test('HTTPS: certificates replaced and reread on reload, without dropping the connections in flight', async (t) => {
  if (!prerequisites(t, commandUnavailable('openssl'))) return;
  const dir = tmpDir();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pem = join(dir, 'site.pem');
  makeCert(pem, 'a.test', ['a.test']);
  const b = await fakeBackend('app');
  t.after(() => b.close());
  const [http, https, https13] = [await freePort(), await freePort(), await freePort()];
  const px = await startProxy(config(http, https, https13, pem, b.port, 2), https);
  t.after(() => px.stop().then(() => undefined));
  const first = (await tlsRequests(https, { servername: 'a.test' }, [])).fingerprint;

  // a request in flight on a TLS keep-alive connection, a second one after the reload on the same connection
  b.mode = { kind: 'delay', ms: 1500 };
  const inFlight = tlsRequests(https, { servername: 'a.test' }, [REQ('/slow'), REQ('/after')]);
  await until('the slow request at the server', () => b.active === 1);
  makeCert(pem, 'a.test', ['a.test']);
  const n = (px.stderr().match(/configuration reloaded/g) ?? []).length;
  px.reload();
  await until('reloaded', () => (px.stderr().match(/configuration reloaded/g) ?? []).length > n);
  const fresh = await tlsRequests(https, { servername: 'a.test' }, [REQ('/new')]);
  assert.notEqual(fresh.fingerprint, first, 'a new connection gets the new certificate');
  assert.match(fresh.responses[0], /^HTTP\/1\.1 200/);
  const old = await inFlight;
  assert.equal(old.fingerprint, first, 'the connection in flight kept its certificate');
  assert.deepEqual(
    old.responses.map((r) => r.split('\r\n')[0]),
    ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK'],
    'both of its requests answered',
  );
  // a broken certificate file is refused by the reload, which keeps the running configuration
  writeFileSync(pem, 'not a certificate\n');
  px.reload();
  await until('refused', () => /reload failed, keeping the running configuration/.test(px.stderr()));
  assert.match(px.stderr(), /unable to load SSL certificate file/);
  assert.equal((await tlsRequests(https, { servername: 'a.test' }, [])).fingerprint, fresh.fingerprint);
});
