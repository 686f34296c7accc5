// hasetup failover-test: pre-flight, the scenarios one after the other (each from a healthy
// cluster), every fault undone (also on an error or Ctrl-C), the pre-flight once more, the report.
import { spawn } from 'node:child_process';
import type { Host, Inventory } from '../../inventory/types.ts';
import type { Transport } from '../engine/transport.ts';
import { runtimeOf } from '../../roles/lb.ts';
import { Cluster } from '../cluster.ts';
import { Undo } from './faults.ts';
import { holdsVip, macOf, parseNeighbourLine, parseShowStat, showStat, sqlFrom } from './probes.ts';
import type { Recording } from './record.ts';
import { partition } from './partition.ts';
import { capacity, defaultRecoveryMs, type CapacityOptions } from './capacity.ts';
import { dbScenario, Interrupted, lbKill, lbLink, lbStop, spike, webDrop, webStop, type Context } from './scenarios.ts';
import type { FailoverReport, ScenarioReport } from './types.ts';
import { statusOf, vipTarget, type Target } from './target.ts';

export const SCENARIO_GROUPS = ['web', 'lb', 'partition', 'db', 'spike', 'capacity'] as const;
export type ScenarioGroup = (typeof SCENARIO_GROUPS)[number];

export interface FailoverOptions {
  inv: Inventory;
  connect(h: Host): Promise<Transport>;
  groups: ScenarioGroup[];
  rate: number;
  spike: { factors: number[]; stepSeconds: number };
  /** The capacity scenario's settings given on the command line (the inventory's failover_test otherwise). */
  capacity?: Partial<CapacityOptions>;
  say(msg: string): void;
  signal: AbortSignal;
}

/** What is wrong with the cluster for a failover test (nothing: an empty list). */
export async function preflight(c: Cluster, inv: Inventory, target: Target): Promise<string[]> {
  const url = target.url;
  const problems: string[] = [];
  const e = runtimeOf(inv);
  const lbs = c.hosts('lb');
  const webs = c.hosts('web');
  await Promise.all([
    statusOf(target, 5000)
      .then((status) => (status === 200 ? undefined : problems.push(`the VIP answers ${status} at ${url}`)))
      .catch((err: Error) =>
        problems.push(`the VIP does not answer at ${url}: ${err.cause instanceof Error ? err.cause.message : err.message}`),
      ),
    ...lbs.map(async (lb) => {
      try {
        const out = await c.exec(lb.name, `systemctl is-active ${e.proxyUnit} ${e.vrrpUnit}; echo ---; ${showStat}`);
        const [active, stat = ''] = out.stdout.split('\n---\n');
        const states = active.trim().split('\n');
        if (states[0] !== 'active') problems.push(`${lb.name}: ${e.proxyUnit} is ${states[0]}`);
        if (states[1] !== 'active') problems.push(`${lb.name}: ${e.vrrpUnit} is ${states[1]}`);
        const servers = parseShowStat(stat);
        for (const w of webs) {
          const s = servers.find((x) => x.server === w.name);
          if (!s) problems.push(`${lb.name}: its proxy does not list ${w.name}`);
          else if (s.status !== 'UP') problems.push(`${lb.name}: its proxy sees ${w.name} ${s.status}`);
        }
      } catch (err) {
        problems.push(`${lb.name}: ${(err as Error).message}`);
      }
    }),
    (async () => {
      const holders: string[] = [];
      for (const lb of lbs) if ((await c.exec(lb.name, holdsVip(inv)).catch(() => ({ code: 1 }))).code === 0) holders.push(lb.name);
      // the steady state: the LB of the highest priority holds it (it takes it back, after its preempt_delay)
      const preferred = [...lbs].sort((a, b) => (b.priority ?? 0) - (a.priority ?? 0))[0].name;
      if (holders.length !== 1)
        problems.push(`the VIP ${inv.vip.address} is on ${holders.length ? holders.join(' and ') : 'no LB'}: exactly one LB must hold it`);
      else if (holders[0] !== preferred)
        problems.push(`the VIP ${inv.vip.address} is on ${holders[0]}, not yet back on ${preferred} (the LB of the highest priority)`);
    })(),
    (async () => {
      const db = c.hosts('db').find((d) => d.primary) ?? c.hosts('db')[0];
      const q = sqlFrom(inv, db.address, 'SELECT 1');
      const r = await c
        .exec(webs[0].name, q.script, { stdin: q.stdin })
        .catch((err: Error) => ({ code: 1, stdout: '', stderr: err.message }));
      if (r.code !== 0 || r.stdout.trim() !== '1')
        problems.push(
          `the database does not answer ${webs[0].name} with the application's account: ${(r.stderr || r.stdout).trim().split('\n')[0]}`,
        );
    })(),
  ]);
  return problems;
}

/** Waits (at most `ms`) until the pre-flight passes; the problems left when it does not. */
async function healthy(c: Cluster, inv: Inventory, target: Target, ms: number): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const p = await preflight(c, inv, target);
    if (p.length === 0 || Date.now() > deadline) return p;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * The controller's view of the VIP's neighbour entry: a gratuitous ARP changes its MAC (when the
 * controller shares the VIP's network). Each change is timed by `ip` as it reads it (-ts), not when
 * this process gets to the line: the load runs in this process, and on a busy machine its event loop
 * reached a change 5 ms after a request it had already sent to the new MAC was reset.
 */
function arpWatcher(inv: Inventory, now: () => number): (rec: Recording, seconds: number, signal: AbortSignal) => void {
  return (rec, seconds, signal) => {
    const p = spawn('timeout', [String(seconds), 'ip', '-ts', '-o', 'monitor', 'neigh'], { stdio: ['ignore', 'pipe', 'ignore'] });
    p.on('error', () => {});
    let buf = '';
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const change = parseNeighbourLine(line, inv.vip.address, Date.now(), now());
        if (change) rec.arps.push(change);
      }
    });
    // the scenario's end ends it
    const stop = () => p.kill();
    signal.addEventListener('abort', stop, { once: true });
    p.on('close', () => signal.removeEventListener('abort', stop));
  };
}

export async function failoverTest(o: FailoverOptions): Promise<FailoverReport> {
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const c = new Cluster(o.inv, o.connect, now);
  const target = vipTarget(o.inv);
  const undo = new Undo(o.say);
  const startedAt = new Date().toISOString();
  const scenarios: ScenarioReport[] = [];
  let interrupted: boolean;
  let healthyAfter: boolean;
  try {
    o.say('pre-flight: the VIP, both LBs, every web node UP in both proxies, the database');
    // (a cluster just applied may still be settling: the VIP on its way back to the preferred master)
    const problems = await healthy(c, o.inv, target, 30_000);
    if (problems.length) throw new PreflightError(problems);
    const lbByAddress = new Map(c.hosts('lb').map((h) => [h.address, h.name]));
    const lbByMac = new Map<string, string>();
    for (const lb of c.hosts('lb')) lbByMac.set((await c.sh(lb.name, macOf(o.inv))).trim().toLowerCase(), lb.name);
    const ctx: Context = {
      cluster: c,
      inv: o.inv,
      target,
      rate: o.rate,
      thresholds: o.inv.failoverTest.thresholds,
      undo,
      say: o.say,
      signal: o.signal,
      lbByAddress,
      lbByMac,
      watchArps: arpWatcher(o.inv, now),
      spike: o.spike,
    };
    const plan: { group: ScenarioGroup; run: (ctx: Context) => Promise<ScenarioReport | ScenarioReport[]> }[] = [
      { group: 'web', run: webStop },
      { group: 'web', run: webDrop },
      { group: 'lb', run: lbKill },
      { group: 'lb', run: lbLink },
      { group: 'lb', run: lbStop },
      { group: 'partition', run: partition },
      { group: 'db', run: dbScenario },
      { group: 'spike', run: spike },
      { group: 'capacity', run: (x) => capacity(x, capacityOptions(o)) },
    ];
    for (const step of plan.filter((p) => o.groups.includes(p.group))) {
      if (o.signal.aborted) break;
      const left = await healthy(c, o.inv, target, 60_000);
      if (left.length) throw new Error(`the cluster did not become healthy again before the next scenario: ${left.join('; ')}`);
      let r: ScenarioReport | ScenarioReport[];
      try {
        r = await step.run(ctx);
      } catch (e) {
        // interrupted: what this scenario injected is undone below, and it reports nothing
        if (e instanceof Interrupted) break;
        throw e;
      }
      for (const s of Array.isArray(r) ? r : [r]) {
        scenarios.push(s);
        o.say(`${s.title}: ${s.passed ? 'PASS' : 'FAIL'}: ${s.verdict}`);
      }
      const still = await undo.all();
      if (still.length) throw new Error(`could not undo: ${still.join('; ')}`);
    }
  } finally {
    interrupted = o.signal.aborted;
    const still = await undo.all();
    for (const s of still) o.say(`NOT UNDONE: ${s}`);
    o.say('after: the pre-flight once more');
    const left = await healthy(c, o.inv, target, 60_000).catch((e: Error) => [e.message]);
    healthyAfter = left.length === 0;
    for (const p of left) o.say(`not healthy: ${p}`);
    await c.close();
  }
  const report: FailoverReport = {
    cluster: o.inv.cluster,
    engine: o.inv.runtime,
    inventory: o.inv.file,
    startedAt,
    finishedAt: new Date().toISOString(),
    rate: o.rate,
    scenarios,
    healthyAfter,
    passed: healthyAfter && !interrupted && scenarios.length > 0 && scenarios.every((s) => s.passed),
    ...(interrupted ? { interrupted: true } : {}),
  };
  return report;
}

/** The capacity scenario's settings: the command line's, else the inventory's failover_test. */
export function capacityOptions(o: Pick<FailoverOptions, 'inv' | 'rate' | 'capacity'>): CapacityOptions {
  const ft = o.inv.failoverTest;
  const c = ft.capacity;
  return {
    sloMs: ft.sloMs,
    startRate: c.startRate ?? Math.max(1, Math.round(o.rate / 2)),
    stepSeconds: c.stepSeconds,
    refineSteps: c.refineSteps,
    floodFactors: c.floodFactors,
    floodSeconds: c.floodSeconds,
    // the recovery's whole window: its threshold and 5 s, so that a late recovery is measured, not cut off
    recoverySeconds:
      c.recoverySeconds ?? Math.ceil((ft.thresholds.recoveryMs ?? defaultRecoveryMs(o.inv.roles.proxy.timeouts.queue)) / 1000) + 5,
    oneNode: c.oneNode,
    singleBox: c.singleBox,
    connections: c.connections,
    ...Object.fromEntries(Object.entries(o.capacity ?? {}).filter(([, v]) => v !== undefined)),
  };
}

/** The cluster is not ready for a failover test: nothing was injected. */
export class PreflightError extends Error {
  constructor(readonly problems: string[]) {
    super(`the cluster is not ready for a failover test (no fault was injected):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}
