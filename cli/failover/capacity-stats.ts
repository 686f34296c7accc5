// From the open-loop requests to the capacity scenario's figures: latency percentiles from an HDR
// histogram (latency from the due moment, microsecond resolution), the rate served, the errors by
// kind, the 503s that came before the LB's queue timeout could have run out, and the seconds after
// a flood until the p99 is back under the SLO.
import * as hdr from 'hdr-histogram-js';
import type { Outcome, Shot } from './openloop.ts';
import type { ErrorCounts, LoadFigures } from './types.ts';

export const noErrors = (): ErrorCounts => ({ reset: 0, timeout: 0, '502': 0, '503': 0, '504': 0, other: 0 });

export const errorTotal = (e: ErrorCounts): number => e.reset + e.timeout + e['502'] + e['503'] + e['504'] + e.other;

function histogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
}

const ms = (us: number): number => Math.round(us) / 1000;

/** p50/p99/p99.9/max (ms) of some latencies (ms). */
export function hdrPercentiles(latencies: Iterable<number>): { p50: number; p99: number; p999: number; max: number; count: number } {
  const h = histogram();
  for (const l of latencies) h.recordValue(Math.max(1, Math.round(l * 1000)));
  const out = {
    p50: h.totalCount ? ms(h.getValueAtPercentile(50)) : 0,
    p99: h.totalCount ? ms(h.getValueAtPercentile(99)) : 0,
    p999: h.totalCount ? ms(h.getValueAtPercentile(99.9)) : 0,
    max: h.totalCount ? ms(h.maxValue) : 0,
    count: h.totalCount,
  };
  h.destroy();
  return out;
}

const isError = (o: Outcome): boolean => o !== 'ok';

/**
 * The figures of the requests due in [from, to): served per second counts the answers that ended in
 * [from, to) (of any request), so that a flood's throughput is what the cluster delivered meanwhile.
 */
export function loadFigures(shots: readonly Shot[], from: number, to: number, queueTimeoutMs: number): LoadFigures {
  const due = shots.filter((s) => s.due >= from && s.due < to);
  const ok = due.filter((s) => !isError(s.outcome));
  const errors = noErrors();
  let early503 = 0;
  for (const s of due) {
    if (s.outcome === 'ok') continue;
    errors[s.outcome]++;
    // a little slack for the clocks (the LB's timer and ours)
    if (s.outcome === '503' && s.end - s.sent < queueTimeoutMs - 100) early503++;
  }
  const endedOk = shots.filter((s) => s.outcome === 'ok' && s.end >= from && s.end < to).length;
  const p = hdrPercentiles(ok.map((s) => s.end - s.due));
  const all = hdrPercentiles(due.map((s) => s.end - s.due));
  return {
    requests: due.length,
    answered: ok.length,
    served: Math.round((endedOk / Math.max(1, to - from)) * 1000 * 10) / 10,
    p50: p.p50,
    p99: p.p99,
    p999: p.p999,
    max: p.max,
    p99All: all.p99,
    errors,
    early503,
  };
}

/**
 * After a flood that ended at `from`: ms until the first second (by due moment) from which on every
 * second's p99 (of every request, answered or not) is under the SLO without an error; null when the
 * last second of the window is still over it.
 */
export function recoveryMs(shots: readonly Shot[], from: number, to: number, sloMs: number): number | null {
  const seconds = Math.floor((to - from) / 1000);
  let since: number | null = null;
  for (let i = 0; i < seconds; i++) {
    const a = from + i * 1000;
    const inSecond = shots.filter((s) => s.due >= a && s.due < a + 1000);
    const bad = inSecond.some((s) => isError(s.outcome)) || hdrPercentiles(inSecond.map((s) => s.end - s.due)).p99 >= sloMs;
    if (bad) since = null;
    else since ??= i * 1000;
  }
  return since;
}
