// Preemption hands the VIP over without a moment where both routers hold it: the new master adds the
// addresses PREEMPT_HANDOVER_MS after its first advert, once the old master (which drops them when
// that advert arrives) is without them. A dead master is replaced at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PREEMPT_HANDOVER_MS } from '../../../runtime/vrrpd/instance.ts';
import { FakeClock, FakeLan, type Node } from './fakenet.ts';

/** Advances the clock 1 ms at a time, failing at the first millisecond where both hold the VIP. */
function neverBoth(clock: FakeClock, a: Node, b: Node, ms: number): void {
  for (let i = 0; i < ms; i++) {
    clock.advance(1);
    assert.ok(!(a.holdsVip && b.holdsVip), `both held the VIP at ${clock.now()} ms`);
  }
}

test('a backup preempting a live lower priority master: never both holding the VIP, the new master holds it 20 ms after its advert', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  lan.latency = 1;
  const a = lan.add({ name: 'a', priority: 150, advertInt: 0.2 }, '10.0.0.1');
  const b = lan.add({ name: 'b', priority: 100, advertInt: 0.2 }, '10.0.0.2');
  a.inst.start();
  b.inst.start();
  clock.advance(5000);
  assert.ok(a.holdsVip && !b.holdsVip);
  // a's proxy dies: its priority drops below b's, b preempts
  a.inst.setTracking(-60, []);
  neverBoth(clock, a, b, 3000);
  assert.equal(b.inst.state, 'MASTER');
  assert.ok(b.holdsVip && !a.holdsVip);
  const became = b.transitions.find((t) => t.to === 'MASTER')!;
  assert.match(became.reason, /addresses in 20 ms/);
  // a's proxy back: a preempts b, again without overlap
  a.inst.setTracking(0, []);
  neverBoth(clock, a, b, 3000);
  assert.ok(a.holdsVip && !b.holdsVip);
  assert.equal(PREEMPT_HANDOVER_MS, 20);
});

test('a dead master is replaced without the hand-over wait', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  const a = lan.add({ name: 'a', priority: 150, advertInt: 0.2 }, '10.0.0.1');
  const b = lan.add({ name: 'b', priority: 100, advertInt: 0.2 }, '10.0.0.2');
  a.inst.start();
  b.inst.start();
  clock.advance(5000);
  lan.cut.add('10.0.0.1');
  clock.advance(2000);
  const became = b.transitions.find((t) => t.to === 'MASTER')!;
  assert.doesNotMatch(became.reason, /addresses in/);
  assert.ok(b.holdsVip, 'b holds the VIP as soon as it is master');
});

test('preempt_delay counts from the first lower priority advert heard, whenever that is (keepalived 2.2), and an advert as high as ours stops it', () => {
  const clock = new FakeClock();
  const lan = new FakeLan(clock);
  const a = lan.add({ name: 'a', priority: 150, advertInt: 0.2, preemptDelay: 5 }, '10.0.0.1');
  const b = lan.add({ name: 'b', priority: 100, advertInt: 0.2 }, '10.0.0.2');
  a.inst.start();
  b.inst.start();
  // the first preemption, at startup: after the delay
  clock.advance(10_000);
  assert.ok(a.holdsVip);
  // a's check fails: b takes over at once (a is the lower one now, a's own delay does not apply to b)
  a.inst.setTracking(-60, []);
  clock.advance(2000);
  assert.ok(b.holdsVip && !a.holdsVip);
  // a's check recovers: a hears b's lower adverts and waits 5 s before it preempts
  a.inst.setTracking(0, []);
  const back = clock.now();
  clock.advance(4500);
  assert.ok(b.holdsVip && !a.holdsVip, 'no preemption during the delay');
  // its check fails again within the delay (b's adverts now as high as its own): the delay stops...
  a.inst.setTracking(-60, []);
  clock.advance(1000);
  a.inst.setTracking(0, []);
  const again = clock.now();
  // ...and starts over when it recovers
  clock.advance(4500);
  assert.ok(b.holdsVip, 'the delay started over');
  clock.advance(2000);
  assert.ok(a.holdsVip && !b.holdsVip);
  const took = a.transitions.filter((t) => t.to === 'MASTER').pop()!.at;
  assert.ok(took - again >= 5000 && took - back > 6000, `preempted ${took - again} ms after the second recovery`);
});
