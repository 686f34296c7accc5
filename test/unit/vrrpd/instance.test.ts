import { test } from 'node:test';
import assert from 'node:assert/strict';
import { skewTime, masterDownInterval, effectivePriority } from '../../../runtime/vrrpd/instance.ts';
import { FakeClock, FakeLan } from './fakenet.ts';

test('Skew_Time and Master_Down_Interval per RFC 5798 (v3) and RFC 3768 (v2)', () => {
  assert.equal(skewTime(3, 100, 1000), (156 * 1000) / 256);
  assert.equal(skewTime(3, 254, 100), (2 * 100) / 256);
  assert.equal(skewTime(2, 100, 5000), (156 * 1000) / 256); // v2: independent of the interval
  assert.equal(masterDownInterval(3, 200, 100), 300 + (56 * 100) / 256);
  assert.equal(masterDownInterval(2, 1, 1000), 3000 + (255 * 1000) / 256);
  assert.ok(skewTime(3, 200, 1000) < skewTime(3, 100, 1000), 'a higher priority waits less');
});

test('backups started together: the higher priority times out first (skew) and the other stays backup', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  const a = lan.add({ name: 'a', priority: 150 }, '10.0.0.1');
  const b = lan.add({ name: 'b', priority: 100 }, '10.0.0.2');
  a.inst.start();
  b.inst.start();
  assert.equal(a.inst.state, 'BACKUP');
  assert.equal(a.inst.timerRemaining(), masterDownInterval(3, 150, 1000));
  clock.advance(10_000);
  assert.equal(a.inst.state, 'MASTER');
  assert.equal(b.inst.state, 'BACKUP');
  assert.equal(a.transitions[1].at, masterDownInterval(3, 150, 1000), 'master after exactly Master_Down_Interval');
  assert.equal(b.inst.masterAddress, '10.0.0.1');
  assert.ok(a.holdsVip && !b.holdsVip);
  // the master advertises every interval
  const gaps = a.sent.slice(1).map((s, i) => s.at - a.sent[i].at);
  assert.ok(gaps.length >= 5 && gaps.every((g) => g === 1000), `advert gaps ${gaps}`);
});

test('hard failure of the master: the backup takes over after Master_Down_Interval, learnt from the master interval (v3)', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  const a = lan.add({ name: 'a', priority: 150, advertInt: 0.5 }, '10.0.0.1');
  const b = lan.add({ name: 'b', priority: 100, advertInt: 2 }, '10.0.0.2'); // learns 0.5 s from a
  a.inst.start();
  b.inst.start();
  clock.advance(10_000);
  assert.equal(a.inst.state, 'MASTER');
  lan.cut.add('10.0.0.1');
  const lastAdvert = a.sent[a.sent.length - 1].at;
  clock.advance(5000);
  assert.equal(b.inst.state, 'MASTER');
  const took = b.transitions.find((t) => t.to === 'MASTER')!.at - (lastAdvert + lan.latency);
  assert.equal(took, masterDownInterval(3, 100, 500));
});

test('priority 0 hand-off: a stopping master is replaced after the skew time only', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  const a = lan.add({ name: 'a', priority: 150 }, '10.0.0.1');
  const b = lan.add({ name: 'b', priority: 100 }, '10.0.0.2');
  a.inst.start();
  b.inst.start();
  clock.advance(10_000);
  const t0 = clock.now();
  a.inst.shutdown();
  assert.equal(a.inst.state, 'STOP');
  assert.equal(a.holdsVip, false);
  assert.equal(a.sent[a.sent.length - 1].priority, 0);
  clock.advance(3000);
  assert.equal(b.inst.state, 'MASTER');
  const at = b.transitions.find((t) => t.to === 'MASTER')!.at;
  assert.equal(at - t0, lan.latency + skewTime(3, 100, 1000));
  assert.match(b.transitions[b.transitions.length - 1].reason, /priority 0/);
  assert.equal(b.inst.counters.priorityZeroReceived, 1);
});

test('preemption: a higher priority backup takes over from a running lower priority master', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  const low = lan.add({ name: 'low', priority: 100 }, '10.0.0.2');
  low.inst.start();
  clock.advance(5000);
  assert.equal(low.inst.state, 'MASTER');
  const high = lan.add({ name: 'high', priority: 150 }, '10.0.0.1');
  high.inst.start();
  clock.advance(10_000);
  assert.equal(high.inst.state, 'MASTER');
  assert.equal(low.inst.state, 'BACKUP');
  assert.match(low.transitions[low.transitions.length - 1].reason, /higher priority advert from 10.0.0.1/);
  assert.equal(lan.masters().length, 1);
});

test('nopreempt: a higher priority backup leaves the running master alone, and takes over when it dies', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  const low = lan.add({ name: 'low', priority: 100 }, '10.0.0.2');
  low.inst.start();
  clock.advance(5000);
  const high = lan.add({ name: 'high', priority: 150, nopreempt: true }, '10.0.0.1');
  high.inst.start();
  clock.advance(30_000);
  assert.equal(low.inst.state, 'MASTER');
  assert.equal(high.inst.state, 'BACKUP');
  lan.cut.add('10.0.0.2');
  clock.advance(5000);
  assert.equal(high.inst.state, 'MASTER');
});

test('preempt_delay: preemption waits for the delay after startup', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  const low = lan.add({ name: 'low', priority: 100 }, '10.0.0.2');
  low.inst.start();
  clock.advance(5000);
  const high = lan.add({ name: 'high', priority: 150, preemptDelay: 20 }, '10.0.0.1');
  const started = clock.now();
  high.inst.start();
  clock.advance(19_000);
  assert.equal(high.inst.state, 'BACKUP', 'no preemption during the delay');
  assert.equal(low.inst.state, 'MASTER');
  clock.advance(10_000);
  assert.equal(high.inst.state, 'MASTER');
  const at = high.transitions.find((t) => t.to === 'MASTER')!.at;
  assert.ok(at - started >= 20_000, `preempted after ${at - started} ms`);
  assert.ok(at - started <= 20_000 + masterDownInterval(3, 150, 1000) + 1000, `preempted after ${at - started} ms`);
});

test('equal priorities: after a partition heals the higher primary address stays master', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  const a = lan.add({ name: 'a', priority: 100 }, '10.0.0.1');
  const b = lan.add({ name: 'b', priority: 100 }, '10.0.0.2');
  lan.cut.add('10.0.0.1');
  a.inst.start();
  b.inst.start();
  clock.advance(5000);
  assert.equal(lan.masters().length, 2, 'partitioned: both masters');
  lan.cut.clear();
  clock.advance(3000);
  assert.deepEqual(
    lan.masters().map((n) => n.addr),
    ['10.0.0.2'],
  );
  assert.match(a.transitions[a.transitions.length - 1].reason, /equal priority 100 and a higher address/);
  assert.ok(b.holdsVip && !a.holdsVip);
});

test('a partition heals: the lower priority master steps down, the other announces its VIPs again (once a second at most)', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  const a = lan.add({ name: 'a', priority: 150, advertInt: 0.2 }, '10.0.0.1');
  const b = lan.add({ name: 'b', priority: 100, advertInt: 0.2 }, '10.0.0.2');
  a.inst.start();
  b.inst.start();
  clock.advance(3000);
  lan.cut.add('10.0.0.1');
  clock.advance(2000);
  assert.equal(lan.masters().length, 2, 'partitioned: both masters');
  const before = a.announced.length;
  lan.cut.clear();
  const healed = clock.now();
  clock.advance(3000);
  assert.deepEqual(
    lan.masters().map((n) => n.addr),
    ['10.0.0.1'],
  );
  assert.ok(a.holdsVip && !b.holdsVip);
  const again = a.announced.slice(before);
  assert.equal(again.length, 1, `announced again: ${again}`);
  assert.ok(again[0] - healed <= 200 + 2 * lan.latency, `at the first advert of the other master (${again[0] - healed} ms)`);
});

test('address owner (255) becomes master at once and wins over a running master', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  const b = lan.add({ name: 'b', priority: 200 }, '10.0.0.2');
  b.inst.start();
  clock.advance(5000);
  assert.equal(b.inst.state, 'MASTER');
  const owner = lan.add({ name: 'owner', priority: 255 }, '10.0.0.1');
  owner.inst.start();
  assert.equal(owner.inst.state, 'MASTER', 'no waiting for an owner');
  assert.equal(owner.sent.length, 1);
  clock.advance(10);
  assert.equal(b.inst.state, 'BACKUP');
  assert.equal(owner.inst.priority, 255);
  assert.equal(effectivePriority(255, -50), 255, 'weights do not move the owner');
});

test('state MASTER in the config: becomes master after one interval plus skew when alone', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  const a = lan.add({ name: 'a', priority: 100, initialState: 'MASTER' }, '10.0.0.1');
  a.inst.start();
  assert.equal(a.inst.timerRemaining(), 1000 + skewTime(3, 100, 1000));
  clock.advance(2000);
  assert.equal(a.inst.state, 'MASTER');
});

test('VRRPv2 authentication: a wrong password is dropped and counted', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  const a = lan.add({ name: 'a', priority: 150, version: 2, auth: { type: 'PASS', pass: 'secret12' } }, '10.0.0.1');
  const b = lan.add({ name: 'b', priority: 100, version: 2, auth: { type: 'PASS', pass: 'wrong123' } }, '10.0.0.2');
  a.inst.start();
  b.inst.start();
  clock.advance(10_000);
  assert.equal(b.inst.state, 'MASTER', 'b never accepted a');
  assert.ok(b.inst.counters.authErrors >= 3);
  assert.equal(b.inst.counters.advertsReceived, 0);
  assert.ok(a.inst.counters.authErrors >= 1);
});

test('receive checks: TTL, checksum, version, VRID and v2 interval mismatches are dropped and counted', () => {
  const cases: {
    name: string;
    setup: (l: FakeLan) => void;
    counter: 'ttlErrors' | 'checksumErrors' | 'versionErrors' | 'otherVrid' | 'intervalErrors';
  }[] = [
    { name: 'ttl', setup: (l) => (l.nodes[0].ttl = 254), counter: 'ttlErrors' },
    { name: 'checksum', setup: (l) => (l.nodes[0].mangle = (ip) => (ip[22] ^= 1)), counter: 'checksumErrors' },
    { name: 'version', setup: (l) => (l.nodes[0].inst.params = { ...l.nodes[0].inst.params, version: 2 }), counter: 'versionErrors' },
    { name: 'vrid', setup: (l) => (l.nodes[0].inst.params = { ...l.nodes[0].inst.params, vrid: 52 }), counter: 'otherVrid' },
  ];
  for (const c of cases) {
    const clock = new FakeClock();
    const lan = new FakeLan(clock);
    lan.add({ name: 'a', priority: 150, advertInt: 1 }, '10.0.0.1');
    const b = lan.add({ name: 'b', priority: 100, advertInt: 1 }, '10.0.0.2');
    c.setup(lan);
    for (const n of lan.nodes) n.inst.start();
    clock.advance(10_000);
    assert.ok(b.inst.counters[c.counter] >= 3, `${c.name}: ${JSON.stringify(b.inst.counters)}`);
    assert.equal(b.inst.state, 'MASTER', `${c.name}: the dropped adverts did not hold b back`);
  }
  // v2: an advert interval other than ours is dropped (RFC 3768 7.1)
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  lan.add({ name: 'a', priority: 150, version: 2, advertInt: 2 }, '10.0.0.1').inst.start();
  const b = lan.add({ name: 'b', priority: 100, version: 2, advertInt: 1 }, '10.0.0.2');
  b.inst.start();
  clock.advance(10_000);
  assert.ok(b.inst.counters.intervalErrors >= 2);
});

test('track_script weights: a failing check with a negative weight hands the VIP over; recovery preempts back', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  const a = lan.add({ name: 'a', priority: 150 }, '10.0.0.1');
  const b = lan.add({ name: 'b', priority: 100 }, '10.0.0.2');
  a.inst.start();
  b.inst.start();
  clock.advance(10_000);
  assert.equal(a.inst.state, 'MASTER');
  a.inst.setTracking(-60, []); // 150 - 60 = 90 < 100
  assert.equal(a.inst.priority, 90);
  clock.advance(10_000);
  assert.equal(b.inst.state, 'MASTER');
  assert.equal(a.inst.state, 'BACKUP');
  a.inst.setTracking(0, []);
  clock.advance(10_000);
  assert.equal(a.inst.state, 'MASTER');
  assert.equal(lan.masters().length, 1);
});

test('FAULT: a master with a failed weight-0 check sends priority 0, releases the VIP, and comes back as backup', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  const a = lan.add({ name: 'a', priority: 150 }, '10.0.0.1');
  const b = lan.add({ name: 'b', priority: 100 }, '10.0.0.2');
  a.inst.start();
  b.inst.start();
  clock.advance(10_000);
  const t0 = clock.now();
  a.inst.setTracking(0, ['script chk_proxy failed']);
  assert.equal(a.inst.state, 'FAULT');
  assert.equal(a.holdsVip, false);
  assert.equal(a.sent[a.sent.length - 1].priority, 0);
  clock.advance(2000);
  assert.equal(b.inst.state, 'MASTER');
  assert.ok(b.transitions[b.transitions.length - 1].at - t0 < 1000, 'taken over after the skew time');
  const sentInFault = a.sent.length;
  clock.advance(5000);
  assert.equal(a.sent.length, sentInFault, 'no adverts in FAULT');
  a.inst.setTracking(0, []);
  assert.equal(a.inst.state, 'BACKUP');
  clock.advance(10_000);
  assert.equal(a.inst.state, 'MASTER', 'higher priority preempts again');
});

test('reconfigure keeps the state (SIGHUP without a role flap) and applies a new priority', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  const a = lan.add({ name: 'a', priority: 150 }, '10.0.0.1');
  const b = lan.add({ name: 'b', priority: 100 }, '10.0.0.2');
  a.inst.start();
  b.inst.start();
  clock.advance(10_000);
  const n = a.transitions.length;
  a.inst.reconfigure({ ...a.inst.params, priority: 140 }, '10.0.0.1');
  clock.advance(10_000);
  assert.equal(a.inst.state, 'MASTER');
  assert.equal(a.transitions.length, n, 'no transition');
  assert.equal(a.inst.priority, 140);
  assert.equal(b.inst.masterPriority, 140);
  a.inst.reconfigure({ ...a.inst.params, priority: 90 }, '10.0.0.1');
  clock.advance(10_000);
  assert.equal(b.inst.state, 'MASTER');
});

test('unicast: adverts only from the configured peers are accepted, routed ones (TTL < 255) included', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  const a = lan.add({ name: 'a', priority: 150, unicastPeers: ['10.0.0.2'] }, '10.0.0.1');
  const b = lan.add({ name: 'b', priority: 100, unicastPeers: ['10.0.0.1'] }, '10.0.0.2');
  const stranger = lan.add({ name: 'c', priority: 200, unicastPeers: ['10.0.0.2'] }, '10.0.0.3');
  a.ttl = 254;
  a.inst.start();
  b.inst.start();
  stranger.inst.start();
  clock.advance(10_000);
  assert.equal(b.inst.state, 'BACKUP');
  assert.equal(b.inst.masterAddress, '10.0.0.1');
  assert.ok(b.inst.counters.peerErrors >= 3, 'adverts from 10.0.0.3 are not from a peer');
  assert.equal(b.inst.counters.ttlErrors, 0);
});
