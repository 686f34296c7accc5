// The capacity scenario: how much the cluster serves within the latency objective, and what it does
// past that. An open-loop load on the site's page (the demo application's dynamic page by default)
// through the VIP, in constant-rate steps growing by half each time until a step misses the SLO (p99
// over it, or any request failed; a missed step runs once more, and the repeat decides), then a few
// steps between the last good and the first bad one: the capacity is the highest rate served with p99
// under the SLO. Then floods at multiples of it (2x, 4x) for a bounded time, each followed by half the
// capacity to see how soon the p99 is back under the SLO: the cluster should keep serving at about its
// capacity, queue the rest on the LBs and refuse with a 503 only the requests that waited the whole
// `timeout queue`, never reset, time out or 502.
// Side by side in the same run: the cluster with one web node (the others drained on both LBs: how
// capacity scales), and one web node reached directly without the LBs (the seed's "single box")
// under the same ramp and floods. Each step and flood carries what the hosts showed meanwhile
// (capacity-probe.ts).
import { countLogs, HostSampler, markLogs, primaryDb } from './capacity-probe.ts';
import { errorTotal, loadFigures, recoveryMs } from './capacity-stats.ts';
import { webDrainedOn } from './faults.ts';
import { openLoop, type Shot } from './openloop.ts';
import { buckets } from './stats.ts';
import { Interrupted, sleep, until, type Context } from './scenarios.ts';
import type { Sample } from './load.ts';
import type { CapacityReport, CapacityRun, Flood, RampStep, ScenarioReport, Threshold } from './types.ts';
import type { Target } from './target.ts';

export interface CapacityOptions {
  sloMs: number;
  /** The first step's rate (req/s). */
  startRate: number;
  stepSeconds: number;
  refineSteps: number;
  floodFactors: number[];
  floodSeconds: number;
  recoverySeconds: number;
  oneNode: boolean;
  singleBox: boolean;
  /** The load's connections at most. */
  connections: number;
}

/** Each step's rate over the last one's while the ramp grows. */
const GROWTH = 1.5;
const MAX_STEPS = 16;
/** The longest the whole scenario's watchers may run. */
const MAX_SCENARIO_S = 3600;

interface Phase {
  ctx: Context;
  o: CapacityOptions;
  sampler: HostSampler;
  queueTimeoutMs: number;
  clientTimeoutMs: number;
  /** Every request of the scenario, for the chart. */
  all: Shot[];
  /** Those that count as the cluster's failures (through the VIP, every web node). */
  failures: Shot[];
  db: string | undefined;
  webs: string[];
}

/** A constant rate (or a schedule) on one target; resolves when every request has ended. */
async function load(p: Phase, t: Target, rateAt: (t: number) => number, ms: number): Promise<{ shots: Shot[]; from: number }> {
  const from = p.ctx.cluster.now();
  const shots = await openLoop({
    url: t.url,
    connect: t.connect,
    rateAt,
    durationMs: ms,
    timeoutMs: p.clientTimeoutMs,
    maxConnections: p.o.connections,
    now: p.ctx.cluster.now,
    signal: p.ctx.signal,
  });
  p.all.push(...shots);
  if (p.ctx.signal.aborted) throw new Interrupted();
  return { shots, from };
}

async function step(p: Phase, t: Target, rate: number): Promise<RampStep> {
  const ms = p.o.stepSeconds * 1000;
  const { shots, from } = await load(p, t, () => rate, ms);
  const f = loadFigures(shots, from, from + ms, p.queueTimeoutMs);
  const s: RampStep = {
    rate,
    seconds: p.o.stepSeconds,
    ...f,
    hosts: p.sampler.figures(from, from + ms),
    underSlo: errorTotal(f.errors) === 0 && f.p99 < p.o.sloMs,
  };
  p.ctx.say(
    `capacity: ${rate} req/s: served ${f.served}/s, p99 ${Math.round(f.p99)} ms, ${errorTotal(f.errors)} errors${s.underSlo ? '' : ' (over the SLO)'}`,
  );
  return s;
}

/** Until no web node has a PHP request running or waiting (at most `ms`): a flood's leftovers are done. */
async function idle(p: Phase, ms = 60_000): Promise<void> {
  await until(
    ms,
    () => {
      const now = p.ctx.cluster.now();
      const f = p.sampler.figures(now - 600, now - 600);
      return Object.values(f.webs).every((w) => w.fpmBusy === 0 && w.fpmQueue === 0) ? true : null;
    },
    p.ctx.signal,
  );
  await sleep(500, p.ctx.signal);
}

/**
 * A step that counts: one that missed the SLO runs once more, after the web nodes are idle, and the
 * repeat decides. A 4 s step's p99 is its few slowest requests, and one hiccup of a host (a flush, a
 * timer, the previous step's last requests) would otherwise set the capacity, or the one web node's
 * beside it, at a fraction of what it is.
 */
async function counted(p: Phase, t: Target, rate: number, steps: RampStep[]): Promise<boolean> {
  const s = await step(p, t, rate);
  steps.push(s);
  if (s.underSlo) return true;
  p.ctx.say(`capacity: ${rate} req/s once more: a step over the SLO counts when its repeat misses too`);
  await idle(p);
  const again = await step(p, t, rate);
  steps.push(again);
  if (again.underSlo) s.repeated = true;
  return again.underSlo;
}

/** The ramp: steps growing by GROWTH until one misses the SLO, then halving the gap `refineSteps` times. */
async function ramp(p: Phase, t: Target, start: number): Promise<Pick<CapacityRun, 'steps' | 'capacity' | 'knee'>> {
  const steps: RampStep[] = [];
  let good: number | null = null;
  let bad: number | null = null;
  let rate = Math.max(1, Math.round(start));
  for (let i = 0; i < MAX_STEPS; i++) {
    if (await counted(p, t, rate, steps)) {
      good = rate;
      rate = Math.max(rate + 1, Math.round(rate * GROWTH));
    } else {
      bad = rate;
      // not even the first step: lower until one holds (or the floor)
      if (good === null && rate > 1) {
        await idle(p);
        rate = Math.max(1, Math.floor(rate / 2));
        continue;
      }
      break;
    }
    if (good !== null && bad !== null) break;
  }
  for (let i = 0; i < p.o.refineSteps && good !== null && bad !== null; i++) {
    const mid = Math.round((good + bad) / 2);
    if (mid <= good || mid >= bad) break;
    await idle(p);
    if (await counted(p, t, mid, steps)) good = mid;
    else bad = mid;
  }
  steps.sort((a, b) => a.rate - b.rate);
  // the knee: the last step before the p99 more than doubled against the lightest step's (a repeated
  // step's first try is left out: its repeat stands for that rate)
  const held = steps.filter((s) => !s.repeated);
  const base = held[0]?.p99 ?? 0;
  const over = held.findIndex((s) => !s.underSlo || s.p99 > 2 * base);
  const knee = over < 0 ? (held[held.length - 1]?.rate ?? null) : over === 0 ? null : held[over - 1].rate;
  return { steps, capacity: good, knee };
}

/** A flood at `factor` x the capacity for floodSeconds, then half the capacity for recoverySeconds. */
async function flood(p: Phase, t: Target, capacity: number, factor: number): Promise<Flood> {
  const rate = Math.round(capacity * factor);
  const floodMs = p.o.floodSeconds * 1000;
  const after = Math.max(1, Math.round(capacity / 2));
  p.ctx.say(`capacity: flood at ${factor}x (${rate} req/s) for ${p.o.floodSeconds} s, then ${after} req/s for ${p.o.recoverySeconds} s`);
  const mark = await markLogs(p.ctx.cluster, p.webs, p.db);
  const { shots, from } = await load(p, t, (x) => (x < floodMs ? rate : after), floodMs + p.o.recoverySeconds * 1000);
  const logs = await countLogs(p.ctx.cluster, mark, p.db);
  const f = loadFigures(shots, from, from + floodMs, p.queueTimeoutMs);
  const rec = recoveryMs(shots, from + floodMs, from + floodMs + p.o.recoverySeconds * 1000, p.o.sloMs);
  const out: Flood = {
    factor,
    rate,
    seconds: p.o.floodSeconds,
    ...f,
    servedRatio: Math.round((f.served / capacity) * 100) / 100,
    hosts: p.sampler.figures(from, from + floodMs),
    logs,
    recoveryMs: rec === null ? null : Math.round(rec),
  };
  const e = f.errors;
  p.ctx.say(
    `capacity: ${factor}x: served ${f.served}/s (${Math.round(out.servedRatio * 100)} % of the capacity), ` +
      `reset ${e.reset}, timeout ${e.timeout}, 502 ${e['502']}, 503 ${e['503']} (${f.early503} before the queue timeout), ` +
      `p99 back under ${p.o.sloMs} ms ${rec === null ? 'not within the window' : `after ${(rec / 1000).toFixed(1)} s`}`,
  );
  await idle(p);
  return out;
}

async function run(
  p: Phase,
  target: CapacityRun['target'],
  t: Target,
  webs: string[],
  start: number,
  factors: number[],
): Promise<CapacityRun> {
  p.ctx.say(`capacity: ${target} (${t.url}), from ${Math.round(start)} req/s, ${p.o.stepSeconds} s a step`);
  const r = await ramp(p, t, start);
  const floods: Flood[] = [];
  if (r.capacity !== null && factors.length) {
    // the ramp may end on a step over the SLO: its queue drains before the first flood, or the flood's
    // first seconds would carry that step's backlog
    await idle(p);
    for (const f of factors) floods.push(await flood(p, t, r.capacity, f));
  }
  return { target, url: t.url, webs, ...r, floods };
}

/**
 * How soon after a flood the p99 can be back under the SLO, by default. At the flood's end the LBs'
 * queue holds `timeout queue` worth of arrivals, served first-come first-served at the capacity or
 * refused at the queue timeout: until then every new request waits behind them. The recovery load
 * (half the capacity) then drains the rest at half the capacity, another `timeout queue`. So twice the
 * queue timeout, and 2 s for the last second's tail and the hosts' own settling.
 */
export const defaultRecoveryMs = (queueTimeoutMs: number): number => 2 * queueTimeoutMs + 2000;

const th = (figure: string, max: number, actual: number | null, atLeast = false): Threshold => ({
  figure,
  max,
  actual,
  passed: actual !== null && (atLeast ? actual >= max : actual <= max),
  ...(atLeast ? { atLeast: true } : {}),
});

const sum = (fl: Flood[], f: (x: Flood) => number): number => fl.reduce((n, x) => n + f(x), 0);

export async function capacity(ctx: Context, o: CapacityOptions): Promise<ScenarioReport> {
  const c = ctx.cluster;
  const lbs = c.hosts('lb').map((h) => h.name);
  const webHosts = c.hosts('web');
  const webs = webHosts.map((h) => h.name);
  const db = primaryDb(c);
  const queueTimeoutMs = ctx.inv.roles.proxy.timeouts.queue;
  const sampler = new HostSampler(c, lbs, webs, db, MAX_SCENARIO_S);
  const p: Phase = {
    ctx,
    o,
    sampler,
    queueTimeoutMs,
    // long enough for a request that waited the whole queue timeout and was then served
    clientTimeoutMs: queueTimeoutMs + 10_000,
    all: [],
    failures: [],
    db,
    webs,
  };
  const t0 = c.now();
  const events: ScenarioReport['events'] = [];
  const mark = (what: string) => events.push({ t: Math.round(c.now()), kind: 'step', what });
  let cluster: CapacityRun;
  let oneNode: CapacityRun | undefined;
  let singleBox: CapacityRun | undefined;
  let clusterShots: Shot[];
  try {
    await sleep(1000, ctx.signal); // the samplers' first lines
    mark('cluster: ramp');
    const n0 = p.all.length;
    cluster = await run(p, 'cluster', ctx.target, webs, o.startRate, o.floodFactors);
    clusterShots = p.all.slice(n0);
    if (o.oneNode && webs.length > 1 && cluster.capacity !== null) {
      const keep = webs[0];
      const drained = lbs.flatMap((lb) => webs.slice(1).map((w) => webDrainedOn(c, lb, w)));
      mark(`one web node: ${webs.slice(1).join(', ')} drained`);
      ctx.say(`capacity: one web node: ${webs.slice(1).join(', ')} drained on ${lbs.join(' and ')}`);
      for (const f of drained) await ctx.undo.inject(f);
      try {
        oneNode = await run(p, 'one-node', ctx.target, [keep], cluster.capacity / webs.length / 2, []);
      } finally {
        for (const f of drained.reverse()) await ctx.undo.undo(f);
      }
    }
    if (o.singleBox) {
      const box = webHosts[0];
      mark(`single box: ${box.name} directly`);
      const start = (oneNode?.capacity ?? (cluster.capacity ?? o.startRate * 2) / webs.length) / 2;
      singleBox = await run(p, 'single-box', { url: `http://${box.address}/` }, [box.name], start, o.floodFactors);
    }
  } finally {
    await sampler.stop();
  }
  const end = c.now();
  const scaleRatio = oneNode?.capacity && cluster.capacity !== null ? Math.round((cluster.capacity / oneNode.capacity) * 100) / 100 : null;
  const cap: CapacityReport = {
    sloMs: o.sloMs,
    queueTimeoutMs,
    stepSeconds: o.stepSeconds,
    floodSeconds: o.floodSeconds,
    cluster,
    ...(oneNode ? { oneNode } : {}),
    ...(singleBox ? { singleBox } : {}),
    scaleRatio,
  };
  const t = ctx.inv.failoverTest.thresholds;
  const fl = cluster.floods;
  const recoveries = fl.map((f) => f.recoveryMs);
  const thresholds: Threshold[] = [
    th('capacity', 1, cluster.capacity, true),
    th('floodResets', t.floodResets, fl.length ? sum(fl, (f) => f.errors.reset) : null),
    th('floodTimeouts', t.floodTimeouts, fl.length ? sum(fl, (f) => f.errors.timeout) : null),
    th('flood502', t.flood502, fl.length ? sum(fl, (f) => f.errors['502']) : null),
    th('floodEarly503', t.floodEarly503, fl.length ? sum(fl, (f) => f.early503) : null),
    th(
      'tooManyConnections',
      t.tooManyConnections,
      fl.length && fl.every((f) => f.logs.tooManyConnections !== null) ? sum(fl, (f) => f.logs.tooManyConnections ?? 0) : null,
    ),
    th('floodServedRatio', t.floodServedRatio, fl.length ? Math.min(...fl.map((f) => f.servedRatio)) : null, true),
    th(
      'recoveryMs',
      t.recoveryMs ?? defaultRecoveryMs(queueTimeoutMs),
      recoveries.length && recoveries.every((r) => r !== null) ? Math.max(...(recoveries as number[])) : null,
    ),
    ...(oneNode ? [th('scaleRatio', t.scaleRatio, scaleRatio, true)] : []),
  ];
  const failedShots = clusterShots.filter((s) => s.outcome !== 'ok');
  const samples: Sample[] = p.all.map((s) => ({
    t: s.due,
    ms: s.end - s.due,
    kind: 'keepalive',
    status: s.outcome === 'ok' ? s.status : s.status >= 500 ? s.status : 0,
    ...(s.node ? { node: s.node } : {}),
  }));
  const lat = (xs: Shot[]) => {
    const ok = xs
      .filter((s) => s.outcome === 'ok')
      .map((s) => s.end - s.due)
      .sort((a, b) => a - b);
    const at = (q: number) => (ok.length ? Math.round(ok[Math.min(ok.length - 1, Math.ceil(q * ok.length) - 1)] * 1000) / 1000 : 0);
    return { p50: at(0.5), p99: at(0.99), count: ok.length };
  };
  const report: ScenarioReport = {
    name: 'capacity',
    title: `capacity: the rate in steps until p99 passes ${o.sloMs} ms, then floods at ${o.floodFactors.map((f) => `${f}x`).join(' and ')}`,
    from: Math.round(t0),
    to: Math.round(end),
    totalRequests: clusterShots.length,
    failedRequests: failedShots.length,
    connectionsReset: failedShots.filter((s) => s.outcome === 'reset').length,
    latency: { before: lat([]), during: lat(clusterShots), after: lat([]) },
    thresholds,
    passed: thresholds.every((x) => x.passed),
    verdict: verdict(cap),
    events,
    series: buckets(samples, t0, end),
    failures: failedShots.map((s) => ({
      t: Math.round(s.due),
      ms: Math.round(s.end - s.due),
      kind: 'keepalive',
      status: s.status,
      error: s.outcome,
    })),
    figures: {
      capacity: cluster.capacity,
      knee: cluster.knee,
      sloMs: o.sloMs,
      ...(oneNode ? { oneNodeCapacity: oneNode.capacity, scaleRatio } : {}),
      ...(singleBox ? { singleBoxCapacity: singleBox.capacity } : {}),
    },
    capacity: cap,
  };
  return report;
}

function verdict(r: CapacityReport): string {
  const c = r.cluster;
  if (c.capacity === null) return `the cluster did not serve even ${c.steps[0]?.rate ?? 0} req/s with p99 under ${r.sloMs} ms`;
  const parts = [`the cluster serves ${c.capacity} req/s with p99 under ${r.sloMs} ms (knee at ${c.knee ?? '-'} req/s)`];
  for (const f of c.floods)
    parts.push(
      `at ${f.factor}x it served ${f.served}/s (${Math.round(f.servedRatio * 100)} %) with ${f.errors.reset} resets, ${f.errors.timeout} timeouts, ${f.errors['502']} 502s and ${f.errors['503']} 503s` +
        (f.errors['503'] ? ` (${f.early503} before the queue timeout)` : ''),
    );
  if (r.oneNode) parts.push(`one web node: ${r.oneNode.capacity ?? '-'} req/s (x${r.scaleRatio ?? '-'} with ${c.webs.length})`);
  if (r.singleBox) {
    const b = r.singleBox;
    const worst = b.floods[b.floods.length - 1];
    parts.push(
      `the single box (${b.webs[0]} directly): ${b.capacity ?? '-'} req/s` +
        (worst
          ? `, at ${worst.factor}x ${worst.served}/s served, ${errorTotal(worst.errors)} failed (${worst.errors.timeout} timeouts, ${worst.errors.reset} resets), p99 ${Math.round(worst.p99All)} ms`
          : ''),
    );
  }
  return parts.join('; ');
}
