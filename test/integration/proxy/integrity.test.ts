// Bytes are never mixed between connections. The proxy reads every socket into one shared buffer (reads.ts):
// these scenarios make many connections move large, random payloads at once, through HTTP keep-alive, chunked
// bodies, an Upgrade tunnel and mode tcp, with readers that stall (so writes back up), and check every
// payload's SHA-256 end to end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { freePort, sleep, startProxy } from './helpers.ts';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const CLIENTS = 20;
const SIZE = () => 4 * 1024 * 1024 + Math.floor(Math.random() * 4 * 1024 * 1024);

/** Reads a stream with pauses, as a slow client does: the proxy's writes to it back up. */
function slowCollect(s: NodeJS.ReadableStream & { pause(): unknown; resume(): unknown }): Promise<Buffer> {
  return new Promise((res, rej) => {
    const parts: Buffer[] = [];
    let n = 0;
    s.on('data', (d: Buffer) => {
      parts.push(d);
      if (++n % 4 === 0) {
        s.pause();
        setTimeout(() => s.resume(), 20);
      }
    });
    s.on('end', () => res(Buffer.concat(parts)));
    s.on('error', rej);
  });
}

/** Writes a payload in uneven pieces, with short stops. */
async function unevenWrite(w: { write(b: Buffer): boolean }, payload: Buffer): Promise<void> {
  for (let i = 0; i < payload.length;) {
    const n = 1 + Math.floor(Math.random() * 40000);
    w.write(payload.subarray(i, i + n));
    i += n;
    if (Math.random() < 0.2) await sleep(1);
  }
}

test('many connections move random payloads at once: every byte arrives where it belongs', async (t) => {
  // backend: POST /up answers the SHA-256 of the body it got; GET /down/<n> sends n random bytes (chunked or
  // with a length) and their SHA-256 in a header
  const backend = http.createServer((req, res) => {
    if (req.method === 'POST') {
      const h = createHash('sha256');
      req.on('data', (d) => h.update(d));
      req.on('end', () => res.end(h.digest('hex')));
      return;
    }
    const n = Number(req.url!.split('/')[2]);
    const body = randomBytes(n);
    const headers: Record<string, string> = { 'x-sha': sha(body) };
    if (req.url!.endsWith('/cl')) headers['content-length'] = String(n);
    res.writeHead(200, headers);
    unevenWrite(res, body).then(() => res.end());
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  // a byte echo server for mode tcp and for the Upgrade tunnel (which first answers 101)
  const echo = net.createServer((s) => {
    s.once('data', (d) => {
      if (d.toString('latin1').startsWith('GET /ws')) {
        const i = d.indexOf('\r\n\r\n');
        s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n');
        if (i + 4 < d.length) s.write(d.subarray(i + 4));
      } else s.write(d);
      s.pipe(s);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  const bPort = (backend.address() as net.AddressInfo).port;
  const ePort = (echo.address() as net.AddressInfo).port;
  const ports = { http: await freePort(), tcp: await freePort(), ws: await freePort() };
  const px = await startProxy(
    `global
    nbthread 1
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout tunnel 30s
    option http-keep-alive
listen web
    bind 127.0.0.1:${ports.http}
    server b 127.0.0.1:${bPort}
listen ws
    bind 127.0.0.1:${ports.ws}
    server e 127.0.0.1:${ePort}
listen raw
    mode tcp
    bind 127.0.0.1:${ports.tcp}
    server e 127.0.0.1:${ePort}
`,
    ports.http,
  );
  const agent = new http.Agent({ keepAlive: true, maxSockets: 6 });
  t.after(async () => {
    agent.destroy();
    await px.stop();
    backend.close();
    echo.close();
  });

  const upload = async () => {
    const body = randomBytes(SIZE());
    const got = await new Promise<string>((res, rej) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: ports.http,
          path: '/up',
          method: 'POST',
          agent,
          headers: Math.random() < 0.5 ? { 'content-length': String(body.length) } : {},
        },
        (r) => {
          slowCollect(r).then((b) => res(b.toString()), rej);
        },
      );
      req.on('error', rej);
      unevenWrite(req, body).then(() => req.end());
    });
    assert.equal(got, sha(body), 'an upload reached the server intact');
  };
  const download = async (framing: 'cl' | 'chunked') => {
    const { digest, body } = await new Promise<{ digest: string; body: Buffer }>((res, rej) => {
      http
        .get({ host: '127.0.0.1', port: ports.http, path: `/down/${SIZE()}/${framing}`, agent }, (r) => {
          slowCollect(r).then((b) => res({ digest: String(r.headers['x-sha']), body: b }), rej);
        })
        .on('error', rej);
    });
    assert.equal(sha(body), digest, `a ${framing} download reached the client intact`);
  };
  const pipe = async (port: number, upgrade: boolean) => {
    const payload = randomBytes(SIZE());
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    if (upgrade) {
      s.write('GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n');
      const head = await new Promise<Buffer>((r) => s.once('data', r));
      assert.match(head.toString('latin1'), /^HTTP\/1\.1 101 /);
      const skip = head.indexOf('\r\n\r\n') + 4;
      if (skip < head.length) s.unshift(head.subarray(skip));
    }
    const back = new Promise<Buffer>((res, rej) => {
      const parts: Buffer[] = [];
      let n = 0;
      s.on('data', (d: Buffer) => {
        parts.push(d);
        n += d.length;
        if (n >= payload.length) {
          s.destroy();
          res(Buffer.concat(parts));
        } else if (parts.length % 4 === 0) {
          s.pause();
          setTimeout(() => s.resume(), 20);
        }
      });
      s.on('close', () => res(Buffer.concat(parts)));
      s.on('error', rej);
    });
    await unevenWrite(s, payload);
    const got = await back;
    assert.equal(sha(got.subarray(0, payload.length)), sha(payload), `${upgrade ? 'a tunnelled' : 'a mode tcp'} payload came back intact`);
  };

  const jobs: Promise<void>[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const kind = i % 5;
    jobs.push(
      kind === 0
        ? upload()
        : kind === 1
          ? download('cl')
          : kind === 2
            ? download('chunked')
            : kind === 3
              ? pipe(ports.tcp, false)
              : pipe(ports.ws, true),
    );
  }
  const results = await Promise.allSettled(jobs);
  const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
  assert.deepEqual(
    failed.map((f) => String(f.reason)),
    [],
    'every transfer intact',
  );
  assert.equal(px.proc.exitCode, null, 'the proxy is still running');
});
