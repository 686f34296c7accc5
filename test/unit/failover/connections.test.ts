// Which TCP connection carried which request of the failover test's load, and when it was
// established: what tells a request in flight on a host that failed (its connection was open there)
// from one the failure should not have cost. On loopback, against a server that drops every
// connection at a chosen moment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { failed, neverSent, runLoad, type Connection } from '../../../cli/failover/load.ts';
import { Recording } from '../../../cli/failover/record.ts';
import { resettingServer } from '../../helpers/resetting-server.ts';
import { inFlight, movedTo } from '../../../cli/failover/inflight.ts';

async function server(): Promise<{ srv: Server; url: string; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  // answers after 30 ms, so that a drop finds requests in flight
  const srv = createServer((_req, res) => setTimeout(() => res.end('ok'), 30));
  srv.on('connection', (s) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { srv, url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`, sockets };
}

test('every answered request names its connection and when that was established; a new connection each time for "new"', async () => {
  const { srv, url } = await server();
  const conns: Connection[] = [];
  try {
    const s = await runLoad({ url, rate: 200, durationMs: 10_000, maxRequests: 60, onConnection: (c) => conns.push(c) });
    assert.equal(s.length, 60);
    assert.ok(
      s.every((x) => x.status === 200 && typeof x.conn === 'number' && typeof x.connectedAt === 'number'),
      JSON.stringify(s.slice(0, 3)),
    );
    for (const x of s) assert.ok(x.connectedAt! <= x.t + x.ms, 'established before the answer');
    const news = s.filter((x) => x.kind === 'new');
    assert.equal(new Set(news.map((x) => x.conn)).size, news.length, 'one connection per "new" request');
    const ka = s.filter((x) => x.kind === 'keepalive');
    assert.ok(new Set(ka.map((x) => x.conn)).size <= 8, 'keep-alive requests share the pool');
    assert.equal(new Set(s.map((x) => x.conn)).size, conns.length, 'every connection reported, and once');
    assert.ok(
      conns.every((c) => c.closedAt !== undefined && c.closedAt >= c.at),
      'all closed once the load ends',
    );
  } finally {
    srv.close();
  }
});

test('a request given an idle keep-alive connection the server has reset is sent again, once: it was never written', async () => {
  // the load's event loop is busy when the reset arrives (as on a loaded controller), so that the next
  // request is given that connection in the same turn as its reset is read: it fails before any of it is written
  const server = await resettingServer();
  try {
    // once the first answer is in: the server told to reset, then busy until its reset has arrived, then the second request at once
    let answered = false;
    let busy = false;
    const rateAt = () => {
      if (answered && !busy) {
        busy = true;
        server.resetWhileBusy();
      }
      return busy ? 1_000_000 : 10;
    };
    const s = await runLoad({
      url: server.url,
      rate: 10,
      rateAt,
      durationMs: 10_000,
      maxRequests: 2,
      kinds: ['keepalive'],
      connections: 1,
      onSample: () => (answered = true),
    });
    assert.deepEqual(
      s.map((x) => x.status),
      [200, 200],
      JSON.stringify(s),
    );
    assert.equal(s[1].resent, true, `sent again after the reset: ${JSON.stringify(s)}`);
    assert.notEqual(s[1].conn, s[0].conn, 'on a new connection');
  } finally {
    server.close();
  }
  // written requests are never sent again, nor failures that are not the connection's
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  assert.equal(neverSent(reset, false), true);
  assert.equal(neverSent(reset, true), false);
  assert.equal(neverSent(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), false), false);
  assert.equal(neverSent(Object.assign(new Error('timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' }), false), false);
});

test('connections dropped by the server: the failed requests were in flight on connections open at the drop', async () => {
  const { srv, url, sockets } = await server();
  const rec = new Recording(0);
  let dropAt = 0;
  try {
    const t0 = performance.now();
    const dropping = new Promise<void>((r) =>
      setTimeout(() => {
        dropAt = performance.now() - t0;
        for (const s of sockets) s.destroy();
        r();
      }, 300),
    );
    const s = await runLoad({ url, rate: 100, durationMs: 10_000, maxRequests: 150, onConnection: (c) => rec.connection(c) });
    await dropping;
    const lost = s.filter(failed);
    assert.ok(lost.length > 0, 'requests were in flight at the drop');
    for (const x of lost) {
      assert.equal(typeof x.conn, 'number', `${JSON.stringify(x)}: written on a connection`);
      assert.ok(x.connectedAt! < dropAt + 1, `${JSON.stringify(x)}: on a connection open at the drop (${dropAt.toFixed(1)} ms)`);
    }
    const open = rec.openDuring(dropAt - 1, dropAt + 1);
    assert.ok(lost.length <= open, `${lost.length} failed, ${open} connections open at the drop`);
    assert.ok(
      s.some((x) => x.t > dropAt + 50 && x.status === 200),
      'new connections served after the drop',
    );
  } finally {
    srv.close();
  }
});

test("Recording.openDuring counts the connections established before a window's end and not closed before its start", () => {
  const rec = new Recording(1000);
  // on the load's clock (1000 ms after the test's)
  for (const c of [
    { id: 1, dialedAt: 0, at: 0, closedAt: 50 },
    { id: 2, dialedAt: 10, at: 10 },
    { id: 3, dialedAt: 90, at: 90, closedAt: 120 },
    { id: 4, dialedAt: 130, at: 130 },
  ])
    rec.connection(c);
  assert.equal(rec.openDuring(1100, 1110), 2); // 2 and 3
  assert.equal(rec.openDuring(1040, 1200), 4);
  assert.equal(rec.openDuring(1200, 1300), 2); // 2 and 4
});

test("inFlight: the requests lost on connections open at the fault or at the VIP's return, and the others", () => {
  const rec = new Recording(0);
  for (const c of [
    { id: 1, dialedAt: 100, at: 100 }, // on the master before the fault
    { id: 2, dialedAt: 900, at: 900, closedAt: 950 }, // closed before the fault
    { id: 3, dialedAt: 1500, at: 1500 }, // on the backup after the takeover
  ])
    rec.connection(c);
  const req = (t: number, ms: number, status: number, connectedAt?: number) =>
    rec.requests.push({ t, ms, kind: 'keepalive', status, ...(connectedAt !== undefined ? { connectedAt } : {}) });
  req(500, 5, 200, 100);
  req(990, 30, 0, 100); // in flight on the master at the fault (1000..1010)
  req(1005, 3, 0, 1004); // a connection made during the injection, before the kill
  req(1100, 1, 0); // refused: never had a connection (the VIP left behind)
  req(1600, 10, 200, 1500);
  req(5000, 5, 0, 1500); // cut when the VIP came back (5002)
  req(3000, 2500, 0, 1500); // sent before the heal, still in flight on the backup at the return
  req(5100, 2, 0, 5050); // after the return, on a new connection: not a move's loss
  req(900, 20, 0, 100); // failed before the fault
  const f = inFlight(rec, { fault: 1000, away: 1010, returned: { from: 5002, at: 5002 } });
  assert.deepEqual(f, { openAtFault: 1, lostAtFault: 2, openAtReturn: 2, lostAtReturn: 2, notInFlight: 3 });
  assert.equal(inFlight(rec, { fault: 1000, away: 1010, returned: null }).lostAtReturn, 0);
});

test('movedTo: the traffic moved from the first sign of it (VIP seen, neighbour entry changed, a request answered) to the last', () => {
  const rec = new Recording(0);
  const macs = new Map([
    ['02:00:00:00:00:11', 'lb01'],
    ['02:00:00:00:00:12', 'lb02'],
  ]);
  rec.arps.push({ t: 1200, mac: '02:00:00:00:00:12' }, { t: 5010, mac: '02:00:00:00:00:11' });
  // the VIP reported on lb01 at 5002, its gratuitous ARP seen at 5010: a connection made at 5005 went to lb02
  assert.deepEqual(movedTo(rec, macs, 'lb01', 4000, 5002), { from: 5002, at: 5010 });
  // the VIP's report later than the ARP (it comes over SSH): from the ARP to the report
  assert.deepEqual(movedTo(rec, macs, 'lb02', 1000, 1250), { from: 1200, at: 1250 });
  // a request answered through lb02 before either: the window starts with it
  rec.requests.push({ t: 1150, ms: 3, kind: 'keepalive', status: 200, lb: 'lb02' });
  assert.deepEqual(movedTo(rec, macs, 'lb02', 1000, 1250), { from: 1150, at: 1250 });
  // no neighbour change seen (the controller is not on the VIP's network): the VIP's moment
  assert.deepEqual(movedTo(rec, macs, 'lb01', 6000, 6100), { from: 6100, at: 6100 });
  assert.equal(movedTo(rec, macs, 'lb01', 6000, null), null);
  // the VIP's report missed, the ARP seen (and the request answered before it)
  assert.deepEqual(movedTo(rec, macs, 'lb02', 1000, null), { from: 1150, at: 1200 });
});

test('inFlight at the return: a connection made before the ARP landed, and a failure before the VIP was reported, were in flight on the backup', () => {
  const macs = new Map([['02:00:00:00:00:11', 'lb01']]);
  const recording = (vipReported: number) => {
    const rec = new Recording(0);
    rec.arps.push({ t: 5010, mac: '02:00:00:00:00:11' });
    return { rec, back: () => movedTo(rec, macs, 'lb01', 4000, vipReported) };
  };
  const fault = { fault: 1000, away: 1250 };

  // the VIP reported on lb01 at 5002, its ARP landed at 5010: a new connection established at 5005 went to lb02, then reset
  const early = recording(5002);
  early.rec.connection({ id: 1, dialedAt: 5005, at: 5005 });
  early.rec.requests.push({ t: 5004, ms: 10, kind: 'new', status: 0, connectedAt: 5005 });
  assert.equal(inFlight(early.rec, { ...fault, returned: { from: 5002, at: 5002 } }).notInFlight, 1, 'by the VIP alone');
  assert.deepEqual(inFlight(early.rec, { ...fault, returned: early.back() }), {
    openAtFault: 0,
    lostAtFault: 0,
    openAtReturn: 1,
    lostAtReturn: 1,
    notInFlight: 0,
  });

  // the ARP landed at 5010, the VIP's report came at 5030: a request on a connection open on lb02 since 3000, reset at 5015
  const late = recording(5030);
  late.rec.connection({ id: 1, dialedAt: 3000, at: 3000 });
  late.rec.requests.push({ t: 5012, ms: 3, kind: 'keepalive', status: 0, connectedAt: 3000 });
  assert.equal(inFlight(late.rec, { ...fault, returned: { from: 5030, at: 5030 } }).notInFlight, 1, 'by the VIP alone');
  assert.equal(inFlight(late.rec, { ...fault, returned: late.back() }).lostAtReturn, 1);
  assert.equal(inFlight(late.rec, { ...fault, returned: late.back() }).notInFlight, 0);
});
