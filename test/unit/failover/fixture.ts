// A realistic failover report for the report's tests, made the way the command makes one: raw
// samples of a steady load (seeded, so always the same), turned into the model by stats.ts.
// Scenarios of 60-120 s: web01 stopped and dropped, the master LB killed (the VIP moves to lb02
// and back), the DB checks, and the spike's rate steps.
import type { Sample } from '../../../cli/failover/load.ts';
import { buckets, connectionsReset, failedRequests, latencyBetween, shareByNode } from '../../../cli/failover/stats.ts';
import type { FailoverReport, ScenarioReport, SpikeStep, Threshold, TimelineEvent } from '../../../cli/failover/types.ts';

/** A linear congruential generator (Numerical Recipes' constants): jitter that is the same on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return a / 4294967296;
  };
}

interface LoadShape {
  from: number;
  to: number;
  rate: (t: number) => number;
  /** Who answers a request sent at t, or how it fails. */
  answer: (t: number, r: () => number) => { node?: string; status: number; error?: string; ms?: number };
  /** Typical latency at t (ms). */
  latency?: (t: number) => number;
}

function synthLoad(shape: LoadShape, seed: number): Sample[] {
  const r = random(seed);
  const out: Sample[] = [];
  let t = shape.from;
  let i = 0;
  while (t < shape.to) {
    const a = shape.answer(t, r);
    const base = shape.latency?.(t) ?? 2;
    const ms = a.ms ?? base * (0.6 + r() * 0.8) + (r() < 0.02 ? base * 4 * r() : 0);
    const s: Sample = { t: Math.round(t * 1000) / 1000, ms, kind: i % 2 === 0 ? 'keepalive' : 'new', status: a.status };
    if (a.node) s.node = a.node;
    if (a.error) s.error = a.error;
    out.push(s);
    t += 1000 / shape.rate(t);
    i++;
  }
  return out;
}

const roundRobin = (nodes: string[]) => {
  let k = 0;
  return () => nodes[k++ % nodes.length];
};

function threshold(figure: string, max: number, actual: number | null): Threshold {
  return { figure, max, actual, passed: actual !== null && actual <= max };
}

/** The model of one scenario from its samples, as the command would fill it. */
function scenario(
  base: Pick<ScenarioReport, 'name' | 'title' | 'from' | 'to' | 'events' | 'verdict'> & Partial<ScenarioReport>,
  samples: Sample[],
  fault: { at: number; healed: number },
  vipAt?: (t: number) => string | undefined,
): ScenarioReport {
  const failures = failedRequests(samples, vipAt);
  const thresholds = base.thresholds ?? [];
  return {
    totalRequests: samples.length,
    failedRequests: failures.length,
    latency: {
      before: latencyBetween(samples, base.from, fault.at),
      during: latencyBetween(samples, fault.at, fault.healed),
      after: latencyBetween(samples, fault.healed, base.to),
    },
    series: buckets(samples, base.from, base.to, vipAt),
    failures,
    connectionsReset: connectionsReset(failures),
    ...base,
    thresholds,
    passed: thresholds.every((t) => t.passed),
  };
}

function webScenario(name: 'web-stop' | 'web-drop', from: number, seed: number, failing: boolean): ScenarioReport {
  const to = from + 90_000;
  const fault = from + 20_000;
  const detected = fault + (name === 'web-stop' ? 1_240 : 2_810);
  const healed = from + 50_000;
  const restored = healed + 2_150;
  const both = roundRobin(['web01', 'web02']);
  const lost = new Set<number>();
  const samples = synthLoad(
    {
      from,
      to,
      rate: () => 200,
      answer: (t, r) => {
        if (t < fault || t >= restored) return { node: both(), status: 200 };
        if (t < detected) {
          // until both proxies mark web01 DOWN, its share of the requests is retried (stop) or lost in flight (drop)
          const node = both();
          if (node === 'web01' && failing && name === 'web-drop' && lost.size < 3 && r() < 0.02) {
            lost.add(t);
            return { status: 0, error: 'timeout', ms: 10_000 };
          }
          return { node: 'web02', status: 200 };
        }
        return { node: 'web02', status: 200 };
      },
      latency: (t) => (t >= fault && t < restored ? 3.1 : 1.9),
    },
    seed,
  );
  const failed = samples.filter((s) => s.status === 0).length;
  const events: TimelineEvent[] = [
    { t: fault, kind: 'fault', what: name === 'web-stop' ? 'apache2 stopped on web01' : "web01's packets dropped (nftables)" },
    { t: detected, kind: 'detected', what: 'web01 DOWN in both proxies' },
    { t: healed, kind: 'healed', what: name === 'web-stop' ? 'apache2 started on web01' : 'nftables drop removed on web01' },
    { t: restored, kind: 'restored', what: 'web01 UP in both proxies and serving' },
  ];
  return scenario(
    {
      name,
      title: name === 'web-stop' ? 'Apache stopped on web01' : "web01's packets dropped",
      from,
      to,
      detectionMs: detected - fault,
      restoredMs: restored - healed,
      shareDuringFault: shareByNode(samples, detected, healed),
      thresholds: [threshold('failedRequests', 0, failed), threshold('detectionMs', 2_000, detected - fault)],
      verdict:
        failed === 0
          ? 'web01 failed and web02 served every request: no user saw an error; web01 was back in rotation 2.15 s after it was healed.'
          : `${failed} requests in flight on web01 timed out before both proxies marked it DOWN (${((detected - fault) / 1000).toFixed(2)} s, over the 2 s goal).`,
      events,
    },
    samples,
    { at: fault, healed },
  );
}

function lbScenario(from: number, seed: number): ScenarioReport {
  const to = from + 80_000;
  const fault = from + 20_000;
  const lastViaLb01 = fault + 4;
  const firstViaLb02 = fault + 712;
  const healed = from + 45_000;
  const back = healed + 5_480;
  const vipAt = (t: number): string | undefined => (t < from ? undefined : t < firstViaLb02 - 30 ? 'lb01' : t < back ? 'lb02' : 'lb01');
  const both = roundRobin(['web01', 'web02']);
  const samples = synthLoad(
    {
      from,
      to,
      rate: () => 200,
      answer: (t, r) => {
        if (t > lastViaLb01 && t < firstViaLb02)
          return r() < 0.3 ? { status: 0, error: 'ECONNRESET', ms: 1 + r() * 3 } : { status: 0, error: 'timeout', ms: 10_000 };
        return { node: both(), status: 200 };
      },
    },
    seed,
  );
  return scenario(
    {
      name: 'lb-kill',
      title: 'Master LB killed (proxy and VRRP daemon SIGKILLed on lb01)',
      from,
      to,
      takeoverMs: firstViaLb02 - lastViaLb01,
      restoredMs: back - healed,
      figures: { vipOnNewMasterMs: 682, gratuitousArps: 5, preemptedBack: true },
      thresholds: [threshold('takeoverMs', 1_000, firstViaLb02 - lastViaLb01)],
      verdict:
        'lb02 took the VIP 708 ms after lb01 died; only the requests in flight through lb01 failed; lb01 took the VIP back 5.48 s after it was restarted.',
      events: [
        { t: fault, kind: 'fault', what: 'hasetup-proxy and hasetup-vrrpd SIGKILLed on lb01' },
        { t: firstViaLb02 - 30, kind: 'takeover', what: 'VIP on lb02 (gratuitous ARPs sent)' },
        { t: healed, kind: 'healed', what: 'services started on lb01' },
        { t: back, kind: 'restored', what: 'VIP back on lb01 (preempted)' },
      ],
    },
    samples,
    { at: fault, healed },
    vipAt,
  );
}

function dbScenario(from: number, seed: number): ScenarioReport {
  const to = from + 60_000;
  const both = roundRobin(['web01', 'web02']);
  const samples = synthLoad({ from, to, rate: () => 200, answer: () => ({ node: both(), status: 200 }) }, seed);
  return scenario(
    {
      name: 'db',
      title: 'A write and a read with the app credentials from web01',
      from,
      to,
      figures: { writeMs: 4.2, readMs: 1.1, replicaRowSeen: true, replicationLagSeconds: 0 },
      verdict: 'web01 wrote a row and read it back as the application; the replica had it within 1 s (lag 0 s).',
      events: [{ t: from + 30_000, kind: 'note', what: 'row written on the primary' }],
    },
    samples,
    { at: from + 30_000, healed: from + 30_000 },
  );
}

function spikeScenario(from: number, rate: number, seed: number): ScenarioReport {
  const stepMs = 20_000;
  const factors = [1, 2, 4, 8];
  const to = from + stepMs * factors.length;
  const stepOf = (t: number) => Math.min(factors.length - 1, Math.floor((t - from) / stepMs));
  const both = roundRobin(['web01', 'web02']);
  const samples = synthLoad(
    {
      from,
      to,
      rate: (t) => rate * factors[stepOf(t)],
      // the last step queues in the proxy, and past the queue timeout a few get a 503
      answer: (t, r) => (stepOf(t) === 3 && r() < 0.002 ? { status: 503, node: undefined, ms: 5_000 } : { node: both(), status: 200 }),
      latency: (t) => [2, 2.4, 6, 180][stepOf(t)],
    },
    seed,
  );
  const steps: SpikeStep[] = factors.map((f, i) => {
    const a = from + i * stepMs;
    const inStep = samples.filter((s) => s.t >= a && s.t < a + stepMs);
    const l = latencyBetween(samples, a, a + stepMs);
    const errors = inStep.filter((s) => s.status === 0 || s.status >= 500).length;
    return {
      rate: rate * f,
      served: (inStep.length - errors) / (stepMs / 1000),
      p50: l.p50,
      p99: l.p99,
      errors,
      maxQueue: [0, 0, 3, 212][i],
      maxSessions: [4, 9, 32, 32][i],
    };
  });
  return scenario(
    {
      name: 'spike',
      title: 'Traffic spike: the rate doubled three times',
      from,
      to,
      steps,
      thresholds: [threshold('p99DuringMs', 10_000, steps[3].p99)],
      verdict:
        'At 8x the rate the proxy queued requests (p99 up to hundreds of ms) with per-server maxconn 32; errors came only past the queue timeout.',
      events: factors.map((f, i) => ({ t: from + i * stepMs, kind: 'step' as const, what: `${rate * f} req/s` })),
    },
    samples,
    { at: from + stepMs, healed: to - 1 },
  );
}

/** A whole run: passed (everything held, the cluster healthy), or failed (web-drop lost requests and detected late). */
export function fixtureReport(opts: { failing?: boolean } = {}): FailoverReport {
  const failing = opts.failing ?? false;
  const scenarios: ScenarioReport[] = [];
  let at = 2_000;
  const next = (s: ScenarioReport) => {
    scenarios.push(s);
    at = s.to + 5_000;
  };
  next(webScenario('web-stop', at, 1, failing));
  if (failing) next(webScenario('web-drop', at, 2, failing));
  next(lbScenario(at, 3));
  next(dbScenario(at, 4));
  scenarios.push({
    name: 'db-primary-down',
    title: "The primary's MariaDB stopped",
    from: at,
    to: at,
    totalRequests: 0,
    failedRequests: 0,
    latency: { before: { p50: 0, p99: 0, count: 0 }, during: { p50: 0, p99: 0, count: 0 }, after: { p50: 0, p99: 0, count: 0 } },
    thresholds: [],
    passed: true,
    verdict: '',
    events: [],
    series: [],
    failures: [],
    skipped: 'the inventory has no replica',
  });
  next(spikeScenario(at, 200, 5));
  const passed = scenarios.every((s) => s.passed);
  return {
    cluster: 'shop',
    engine: 'bundled',
    inventory: 'inventory.yaml',
    startedAt: '2025-03-14T09:00:00.000Z',
    finishedAt: '2025-03-14T09:07:12.000Z',
    rate: 200,
    scenarios,
    healthyAfter: true,
    passed,
  };
}
