// The capacity scenario's open-loop load sends again, once, a request that failed before any of it was
// written (the idle keep-alive connection it was given had been reset), as HTTP clients do; its latency
// still counts from when it was due.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openLoop } from '../../../cli/failover/openloop.ts';
import { resettingServer } from '../../helpers/resetting-server.ts';

test('openLoop: a request given an idle connection the server has reset is sent again and answered', async () => {
  const server = await resettingServer();
  try {
    const t0 = performance.now();
    const now = () => performance.now() - t0;
    // the first request at 100 ms; at 200 ms (it is answered by then) the reset, then one request at once
    let resetAt: number | null = null;
    const rateAt = (t: number) => {
      if (t >= 200 && resetAt === null) {
        resetAt = t;
        server.resetWhileBusy();
      }
      if (resetAt === null) return 10;
      return t === resetAt ? 1000 : 0;
    };
    const shots = await openLoop({ url: server.url, rateAt, durationMs: 400, timeoutMs: 5000, maxConnections: 1, now });
    assert.ok(shots.length >= 2, JSON.stringify(shots));
    assert.deepEqual(
      shots.map((s) => s.outcome),
      shots.map(() => 'ok'),
      JSON.stringify(shots),
    );
  } finally {
    server.close();
  }
});
