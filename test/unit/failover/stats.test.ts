// The report's arithmetic on small inputs whose answers are known by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Sample } from '../../../cli/failover/load.ts';
import {
  buckets,
  connectionsReset,
  failedRequests,
  latencyBetween,
  percentile,
  percentiles,
  shareByNode,
} from '../../../cli/failover/stats.ts';

const ok = (t: number, ms: number, node = 'web01'): Sample => ({ t, ms, status: 200, node, kind: 'keepalive' });
const bad = (t: number, ms: number, status = 0, error?: string): Sample => ({ t, ms, status, kind: 'new', ...(error ? { error } : {}) });

test('percentiles by nearest rank: exact values of 1..10 and of 1..100', () => {
  const ten = [7, 3, 10, 1, 9, 2, 8, 4, 6, 5];
  assert.deepEqual(percentiles(ten), { p50: 5, p99: 10, count: 10 });
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.deepEqual(percentiles(hundred), { p50: 50, p99: 99, count: 100 });
  assert.equal(percentile([1, 2, 3, 4], 25), 1);
  assert.equal(percentile([1, 2, 3, 4], 26), 2);
  assert.equal(percentile([1, 2, 3, 4], 100), 4);
  // the input is left as it was
  assert.deepEqual(ten, [7, 3, 10, 1, 9, 2, 8, 4, 6, 5]);
});

test('percentiles of nothing are 0 with a count of 0; of one sample, that sample', () => {
  assert.deepEqual(percentiles([]), { p50: 0, p99: 0, count: 0 });
  assert.deepEqual(percentiles([12.3456789]), { p50: 12.346, p99: 12.346, count: 1 });
});

test('latencyBetween takes the requests sent in [from, to), failed ones included', () => {
  const s = [ok(999, 1), ok(1000, 2), bad(1500, 10_000, 0, 'timeout'), ok(1999.9, 3), ok(2000, 4)];
  assert.deepEqual(latencyBetween(s, 1000, 2000), { p50: 3, p99: 10_000, count: 3 });
  assert.deepEqual(latencyBetween(s, 5000, 6000), { p50: 0, p99: 0, count: 0 });
});

test('buckets: one per second, a sample at the boundary in the next second, errors apart from nodes', () => {
  const s = [
    ok(10, 1, 'web01'),
    ok(999.999, 3, 'web02'),
    ok(1000, 5, 'web01'), // the first instant of the second second
    bad(1200, 4, 503),
    bad(1300, 9, 0, 'ECONNRESET'),
    { t: 1400, ms: 2, status: 200, kind: 'new' } as Sample, // no X-Served-By
    ok(2500, 7, 'web02'), // past `to`: left out
    ok(-1, 7, 'web02'), // before `from`: left out
  ];
  const holder = (t: number) => (t <= 1000 ? 'lb01' : 'lb02');
  const b = buckets(s, 0, 2000, holder);
  assert.deepEqual(b, [
    { t: 0, byNode: { web01: 1, web02: 1 }, errors: 0, p50: 1, p99: 3, vipHolder: 'lb01' },
    { t: 1000, byNode: { web01: 1, '?': 1 }, errors: 2, p50: 4, p99: 9, vipHolder: 'lb02' },
  ]);
});

test('buckets: a partial last second, empty seconds, no holder known, no samples at all', () => {
  const b = buckets([ok(2100, 2)], 0, 2500, () => undefined);
  assert.equal(b.length, 3);
  assert.deepEqual(b[0], { t: 0, byNode: {}, errors: 0, p50: 0, p99: 0 });
  assert.deepEqual(b[2], { t: 2000, byNode: { web01: 1 }, errors: 0, p50: 2, p99: 2 });
  const at: number[] = [];
  buckets([], 500, 2700, (t) => (at.push(t), 'lb01'));
  // the holder at each second's end, the last one cut at `to`
  assert.deepEqual(at, [1500, 2500, 2700]);
  assert.deepEqual(buckets([], 0, 0), []);
  assert.deepEqual(buckets([ok(0, 1)], 0, 1), [{ t: 0, byNode: { web01: 1 }, errors: 0, p50: 1, p99: 1 }]);
});

test('shareByNode: answered requests only, rounded to 0.1 %', () => {
  const s = [ok(0, 1, 'web02'), ok(1, 1, 'web01'), ok(2, 1, 'web02'), bad(3, 1), ok(4000, 1, 'web01')];
  assert.deepEqual(shareByNode(s, 0, 1000), { web01: 0.333, web02: 0.667 });
  assert.deepEqual(shareByNode(s, 2000, 3000), {});
});

test('failedRequests: no answer or a 5xx, with the LB of the moment; connections reset counted', () => {
  const s = [
    bad(300, 10_000.0004, 0, 'timeout'),
    ok(0, 1),
    bad(100, 2, 0, 'ECONNRESET'),
    bad(200, 5, 502),
    ok(250, 3, 'web02'),
    { ...ok(260, 1), status: 404 },
  ];
  const f = failedRequests(s, (t) => (t < 250 ? 'lb01' : undefined));
  assert.deepEqual(f, [
    { t: 100, ms: 2, kind: 'new', status: 0, error: 'ECONNRESET', lb: 'lb01' },
    { t: 200, ms: 5, kind: 'new', status: 502, lb: 'lb01' },
    { t: 300, ms: 10_000, kind: 'new', status: 0, error: 'timeout' },
  ]);
  assert.equal(connectionsReset(f), 1);
  assert.deepEqual(failedRequests([]), []);
});
