// The proxy's socket helpers. send() (runtime/proxy/writes.ts): writes that bypass node:stream's Writable keep
// socket.write()'s promises: every byte arrives once and in order, mixed with socket.write() calls, false when the
// kernel is full and then 'drain', errors reported on the socket. clock() (runtime/proxy/reads.ts): one reading of
// the clock per read callback, Date.now() outside them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { clock, connectReads } from '../../../runtime/proxy/reads.ts';
import { direct, send } from '../../../runtime/proxy/writes.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function pair(): Promise<{ a: net.Socket; b: net.Socket; close(): void }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  // `a` reads into a buffer of its own, so that pause() stops its reads at once
  const a = net.connect({
    port: (server.address() as net.AddressInfo).port,
    host: '127.0.0.1',
    onread: { buffer: Buffer.alloc(4096), callback: () => true },
  });
  await new Promise((r) => a.once('connect', r));
  const b = await accepted;
  return {
    a,
    b,
    close() {
      a.destroy();
      b.destroy();
      server.close();
    },
  };
}

test('send() writes directly on this Node', () => {
  assert.equal(direct, true, 'process.binding("stream_wrap") offers WriteWrap: the direct path must be in use');
});

test(
  'send(): a peer that does not read fills the kernel, send() says so, drain follows, bytes arrive in order',
  { timeout: 30000 },
  async (t) => {
    const p = await pair();
    t.after(() => p.close());
    const pieces: Buffer[] = [];
    // send() alone until the kernel's buffers are full (the peer is paused): the Writable sees none of these
    p.b.pause();
    let full = false;
    for (let i = 0; i < 200 && !full; i++) {
      const piece = randomBytes(64 * 1024);
      pieces.push(piece);
      full = !send(p.a, piece);
    }
    assert.ok(full, 'a peer that reads nothing must fill the buffers within 12 MB');
    assert.equal(p.a.writableLength, 0, "the bytes waiting are libuv's, not the Writable's");
    const drained = new Promise<void>((r) => p.a.once('drain', () => r()));
    const got: Buffer[] = [];
    let n = 0;
    let want = Infinity;
    let allIn = () => {};
    const all = new Promise<void>((r) => (allIn = r));
    p.b.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (n >= want) allIn();
    });
    p.b.resume();
    await drained; // emitted by send()'s completion: nothing else wrote to this socket
    // then send() and socket.write() mixed, some while the peer is still catching up: the order holds
    for (let i = 0; i < 40; i++) {
      const piece = randomBytes(1000 + i * 997);
      pieces.push(piece);
      if (i % 2) p.a.write(piece);
      else send(p.a, piece);
    }
    const expected = Buffer.concat(pieces);
    want = expected.length;
    if (n >= want) allIn();
    await all;
    const body = Buffer.concat(got);
    assert.equal(body.length, expected.length);
    assert.equal(sha(body), sha(expected));
  },
);

test('send() to a socket whose peer is gone ends in an error on the socket, not an exception', async (t) => {
  const p = await pair();
  t.after(() => p.close());
  p.a.pause(); // the reset must show on a write, not on a read
  p.b.resetAndDestroy();
  await new Promise((r) => setTimeout(r, 50));
  const err = new Promise<NodeJS.ErrnoException>((r) => p.a.once('error', r));
  const buf = Buffer.alloc(1024);
  // the first write may still be taken by the kernel; the reset shows at the latest on the next ones
  for (let i = 0; i < 5 && !p.a.destroyed; i++) send(p.a, buf);
  const e = await err;
  assert.match(String(e.code), /^(ECONNRESET|EPIPE)$/);
  assert.equal(e.syscall, 'write');
});

test('clock(): the same time throughout a read callback, the current time outside', async (t) => {
  const server = net.createServer((c) => c.end('hello'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(() => server.close());
  const seen: number[][] = [];
  await new Promise<void>((res) => {
    const s = net.connect({
      port: (server.address() as net.AddressInfo).port,
      host: '127.0.0.1',
      onread: connectReads(() => {
        const first = clock();
        const until = Date.now() + 15;
        while (Date.now() < until); // the callback runs 15 ms
        seen.push([first, clock(), Date.now()]);
      }),
    });
    s.on('end', () => res());
  });
  assert.ok(seen.length >= 1);
  for (const [first, again, real] of seen) {
    assert.equal(again, first, 'one time per callback');
    assert.ok(real - first >= 15, 'the callback did run 15 ms');
  }
  const before = clock();
  const until = Date.now() + 5;
  while (Date.now() < until);
  assert.ok(clock() - before >= 5, 'outside a callback clock() follows the time');
});
