// From the load's raw samples to the report's figures: latency percentiles, the per-second
// buckets the chart draws, the share each web node served, the failed requests.
import { failed, type Sample } from './load.ts';
import type { FailedRequest, Percentiles, SecondBucket } from './types.ts';

/** Latencies are kept to the microsecond: finer digits are noise from performance.now(). */
const us = (ms: number): number => Math.round(ms * 1000) / 1000;

/**
 * The p-th percentile (0 < p <= 100) of values sorted ascending, by nearest rank: the smallest
 * value that at least p % of the values are at or below. No interpolation, so the figure is always
 * a latency that some request really had. 0 for no values.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** p50 and p99 of some latencies (ms), in any order. With none, both are 0 and count is 0. */
export function percentiles(latencies: readonly number[]): Percentiles {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50: us(percentile(sorted, 50)), p99: us(percentile(sorted, 99)), count: sorted.length };
}

const within = (s: Sample, from: number, to: number): boolean => s.t >= from && s.t < to;

/** Latency percentiles of the requests sent in [from, to), answered or not (a timeout counts as what the user waited). */
export function latencyBetween(samples: readonly Sample[], from: number, to: number): Percentiles {
  return percentiles(samples.filter((s) => within(s, from, to)).map((s) => s.ms));
}

/** The node that served an answered request; one without an X-Served-By header is counted under "?". */
const nodeOf = (s: Sample): string => s.node ?? '?';

/**
 * One bucket per second from `from` (the first starts there) until `to`; a request belongs to the
 * second it was sent in (t in [start, start + 1000)). Samples outside [from, to) are left out.
 * `vipHolderAt` names the LB that held the VIP at a moment; each bucket takes the holder at its
 * end (or at `to` for a last, shorter second).
 */
export function buckets(
  samples: readonly Sample[],
  from: number,
  to: number,
  vipHolderAt?: (t: number) => string | undefined,
): SecondBucket[] {
  const n = Math.max(0, Math.ceil((to - from) / 1000));
  const latencies: number[][] = Array.from({ length: n }, () => []);
  const out: SecondBucket[] = Array.from({ length: n }, (_, i) => ({ t: from + i * 1000, byNode: {}, errors: 0, p50: 0, p99: 0 }));
  for (const s of samples) {
    if (!within(s, from, to)) continue;
    const i = Math.floor((s.t - from) / 1000);
    const b = out[i];
    latencies[i].push(s.ms);
    if (failed(s)) b.errors++;
    else b.byNode[nodeOf(s)] = (b.byNode[nodeOf(s)] ?? 0) + 1;
  }
  out.forEach((b, i) => {
    const p = percentiles(latencies[i]);
    b.p50 = p.p50;
    b.p99 = p.p99;
    const holder = vipHolderAt?.(Math.min(b.t + 1000, to));
    if (holder !== undefined) b.vipHolder = holder;
  });
  return out;
}

/** The share (0..1, rounded to 0.1 %) of the answered requests sent in [from, to) that each web node served. */
export function shareByNode(samples: readonly Sample[], from: number, to: number): Record<string, number> {
  const counts: Record<string, number> = {};
  let answered = 0;
  for (const s of samples) {
    if (!within(s, from, to) || failed(s)) continue;
    counts[nodeOf(s)] = (counts[nodeOf(s)] ?? 0) + 1;
    answered++;
  }
  return Object.fromEntries(
    Object.entries(counts)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([node, c]) => [node, Math.round((c / answered) * 1000) / 1000]),
  );
}

/** Every failed request, in the order sent; `lbAt` names the LB it went through, when known. */
export function failedRequests(samples: readonly Sample[], lbAt?: (t: number) => string | undefined): FailedRequest[] {
  return samples
    .filter(failed)
    .sort((a, b) => a.t - b.t)
    .map((s) => {
      const f: FailedRequest = { t: s.t, ms: us(s.ms), kind: s.kind, status: s.status };
      if (s.error) f.error = s.error;
      const lb = lbAt?.(s.t);
      if (lb !== undefined) f.lb = lb;
      return f;
    });
}

/** Connections the other end reset, among some failed requests. */
export const connectionsReset = (failures: readonly FailedRequest[]): number => failures.filter((f) => f.error === 'ECONNRESET').length;
