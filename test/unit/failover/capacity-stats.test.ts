// The capacity scenario's figures from open-loop requests: latency from the due moment, served per
// second by end time, errors by kind, 503s before the queue timeout, recovery after a flood.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorTotal, hdrPercentiles, loadFigures, recoveryMs } from '../../../cli/failover/capacity-stats.ts';
import { outcomeOf, type Shot } from '../../../cli/failover/openloop.ts';

const shot = (due: number, ms: number, outcome: Shot['outcome'] = 'ok', sentLate = 0): Shot => ({
  due,
  sent: due + sentLate,
  end: due + ms,
  status: outcome === 'ok' ? 200 : /^\d+$/.test(outcome) ? Number(outcome) : 0,
  outcome,
});

test('outcomeOf: the kinds of failure', () => {
  assert.equal(outcomeOf(200), 'ok');
  assert.equal(outcomeOf(404), 'ok');
  assert.equal(outcomeOf(502), '502');
  assert.equal(outcomeOf(503), '503');
  assert.equal(outcomeOf(500), 'other');
  assert.equal(outcomeOf(0, { code: 'UND_ERR_SOCKET' }), 'reset');
  assert.equal(outcomeOf(0, { code: 'ECONNRESET' }), 'reset');
  assert.equal(outcomeOf(0, { code: 'TIMEOUT' }), 'timeout');
  assert.equal(outcomeOf(0, { code: 'UND_ERR_HEADERS_TIMEOUT' }), 'timeout');
  assert.equal(outcomeOf(0, { code: 'ECONNREFUSED' }), 'other');
});

test('hdrPercentiles: p50, p99, p99.9 and max to the microsecond (3 significant digits)', () => {
  const xs = Array.from({ length: 1000 }, (_, i) => i + 1);
  const p = hdrPercentiles(xs);
  assert.equal(p.count, 1000);
  assert.ok(Math.abs(p.p50 - 500) <= 1, `${p.p50}`);
  assert.ok(Math.abs(p.p99 - 990) <= 1, `${p.p99}`);
  assert.ok(Math.abs(p.p999 - 999) <= 1, `${p.p999}`);
  assert.ok(Math.abs(p.max - 1000) <= 1, `${p.max}`);
  assert.deepEqual(hdrPercentiles([]), { p50: 0, p99: 0, p999: 0, max: 0, count: 0 });
});

test('loadFigures: latency from the due moment, errors by kind, early 503s, served by end time', () => {
  const shots = [
    ...Array.from({ length: 100 }, (_, i) => shot(i * 10, 20)),
    // waited on this side: its latency still counts from the due moment
    shot(5, 900, 'ok', 800),
    shot(10, 5200, '503'),
    shot(20, 300, '503'),
    shot(30, 1000, 'reset'),
    shot(40, 15000, 'timeout'),
    shot(2000, 10),
  ];
  const f = loadFigures(shots, 0, 1000, 5000);
  assert.equal(f.requests, 105);
  assert.equal(f.answered, 101);
  assert.deepEqual(f.errors, { reset: 1, timeout: 1, '502': 0, '503': 2, '504': 0, other: 0 });
  assert.equal(errorTotal(f.errors), 4);
  assert.equal(f.early503, 1);
  assert.ok(f.max >= 899 && f.max <= 901, `${f.max}`);
  assert.ok(f.p99All >= 1000, `${f.p99All}`);
  // answers ended in [0, 1000), over 1 s: 98 of the fast ones (those due at 980 and 990 ended at
  // 1000 and 1010) and the slow one (905)
  assert.equal(f.served, 99);
});

test('recoveryMs: the first second from which on every second holds the SLO', () => {
  const slow = (from: number) => Array.from({ length: 10 }, (_, i) => shot(from + i * 100, 800));
  const fast = (from: number) => Array.from({ length: 10 }, (_, i) => shot(from + i * 100, 50));
  assert.equal(recoveryMs([...fast(0), ...fast(1000), ...fast(2000)], 0, 3000, 500), 0);
  assert.equal(recoveryMs([...slow(0), ...fast(1000), ...slow(2000), ...fast(3000), ...fast(4000)], 0, 5000, 500), 3000);
  assert.equal(recoveryMs([...fast(0), ...slow(1000)], 0, 2000, 500), null);
  // an error is not a recovered second
  assert.equal(recoveryMs([...fast(0), shot(1000, 10, 'reset'), ...fast(1100), ...fast(2000)], 0, 3000, 500), 0 + 2000);
});
