// The failover test's reading of what it watched: the proxies' lines, the VIP's comings and goings,
// and the queries its figures are made of (detection, takeover, share, holder).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNeighbourLine, parseServerLine, parseVipLine } from '../../../cli/failover/probes.ts';
import { Recording } from '../../../cli/failover/record.ts';
import type { Inventory } from '../../../inventory/types.ts';

const inv = { vip: { address: '10.213.0.100', prefix: 24, interface: 'eth0' } } as Inventory;

test('a watcher line of the proxy: each server with its status, sessions and queue', () => {
  const m = parseServerLine('S web01=UP:3:0 web02=DOWN:0:0 web03=UP 1/2:1:4');
  assert.ok(m);
  assert.deepEqual(m.get('web01'), { status: 'UP', sessions: 3, queued: 0 });
  assert.deepEqual(m.get('web02'), { status: 'DOWN', sessions: 0, queued: 0 });
  assert.equal(parseServerLine('garbage'), null);
});

test('ip monitor lines: the VIP added, deleted, or another address', () => {
  assert.equal(
    parseVipLine('2: eth0    inet 10.213.0.100/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever', inv),
    true,
  );
  assert.equal(parseVipLine('Deleted 2: eth0    inet 10.213.0.100/24 scope global secondary eth0', inv), false);
  assert.equal(parseVipLine('2: eth0    inet 10.213.0.11/24 brd 10.213.0.255 scope global eth0', inv), null);
});

test("ip -ts monitor neigh lines: the VIP's new MAC, timed when ip read it on the caller's clock", () => {
  const stamp = '2026-12-06T02:17:06.610963';
  const wall = Date.parse(stamp) + 7; // this process read the line 7 ms after ip did
  assert.deepEqual(parseNeighbourLine(`[${stamp}] 10.213.0.100 dev eth0 lladdr 02:AA:00:00:00:11 REACHABLE `, '10.213.0.100', wall, 5000), {
    t: 4993,
    mac: '02:aa:00:00:00:11',
  });
  // without a stamp: when it was read
  assert.deepEqual(parseNeighbourLine('10.213.0.100 dev eth0 lladdr 02:aa:00:00:00:12 STALE', '10.213.0.100', wall, 5000), {
    t: 5000,
    mac: '02:aa:00:00:00:12',
  });
  // a stamp ahead of this process's wall clock is not in the future
  assert.equal(
    parseNeighbourLine(`[${stamp}] 10.213.0.100 dev eth0 lladdr 02:aa:00:00:00:11 REACHABLE`, '10.213.0.100', wall - 50, 5000)?.t,
    5000,
  );
  // another address (10.213.0.1 is a prefix of 10.213.0.100's text), or no MAC
  assert.equal(parseNeighbourLine(`[${stamp}] 10.213.0.1 dev eth0 lladdr 02:aa:00:00:00:11 REACHABLE`, '10.213.0.100', wall, 5000), null);
  assert.equal(parseNeighbourLine(`[${stamp}] 10.213.0.100 dev eth0 FAILED`, '10.213.0.100', wall, 5000), null);
  assert.equal(
    parseNeighbourLine(`[${stamp}] Deleted 10.213.0.100 dev eth0 lladdr 02:aa:00:00:00:11 STALE`, '10.213.0.100', wall, 5000),
    null,
  );
});

test('detection is when the last of the LBs saw the server DOWN; the holder follows the VIP events', () => {
  const rec = new Recording(0);
  const view = (lb: string, t: number, status: string) => rec.view(lb, t, new Map([['web01', { status, sessions: 0, queued: 0 }]]));
  view('lb01', 100, 'UP');
  view('lb02', 100, 'UP');
  view('lb01', 900, 'DOWN');
  view('lb02', 1300, 'UP 1/2');
  view('lb02', 1400, 'DOWN');
  assert.equal(
    rec.allSee(['lb01', 'lb02'], 'web01', 500, (s) => !!s && /^DOWN/.test(s.status)),
    1400,
  );
  assert.equal(
    rec.allSee(['lb01', 'lb02'], 'web01', 2000, (s) => !!s && /^DOWN/.test(s.status)),
    null,
  );
  rec.vip.push(
    { t: 1000, lb: 'lb02', has: true },
    { t: 1010, lb: 'lb01', has: false },
    { t: 5000, lb: 'lb01', has: true },
    { t: 5020, lb: 'lb02', has: false },
  );
  assert.equal(rec.holderAt(500, 'lb01'), 'lb01');
  assert.equal(rec.holderAt(2000, 'lb01'), 'lb02');
  assert.equal(rec.holderAt(6000, 'lb01'), 'lb01');
  assert.equal(rec.vipOn('lb02', 0), 1000);
});

test('takeover: the last request answered through the old master and the first through the new one; shares and failures', () => {
  const rec = new Recording(0);
  const r = (t: number, lb: string, node: string, status = 200, error?: string) =>
    rec.requests.push({ t, ms: 2, kind: 'new', status, node, lb, ...(error ? { error } : {}) });
  r(100, 'lb01', 'web01');
  r(200, 'lb01', 'web02');
  r(300, 'lb01', 'web01', 0, 'ECONNRESET');
  r(700, 'lb02', 'web02');
  r(800, 'lb02', 'web02');
  assert.equal(rec.lastServed(700, (x) => x.lb === 'lb01')?.t, 200);
  assert.equal(rec.firstServed(250, (x) => x.lb === 'lb02')?.t, 700);
  assert.deepEqual(rec.share(0, 1000), { web01: 0.25, web02: 0.75 });
  assert.deepEqual(rec.failures(), [{ t: 300, ms: 2, kind: 'new', status: 0, error: 'ECONNRESET', lb: 'lb01' }]);
});
