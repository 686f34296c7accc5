// The failover test's scenarios: each runs a steady load through the VIP, watches both proxies and
// the VIP, injects its fault, measures, heals it, and reports (types.ts). The web node and the LB
// that fail are web01 and the VRRP master of the moment; both runtimes get the same scenarios.
import type { Inventory } from '../../inventory/types.ts';
import { runtimeOf } from '../../roles/lb.ts';
import {
  apacheStopped,
  lbKilled,
  lbLinkDown,
  lbStopped,
  mariadbStopped,
  webDropped,
  type Fault,
  type LbKill,
  type Undo,
} from './faults.ts';
import { inFlight, movedTo } from './inflight.ts';
import { failed, runLoad } from './load.ts';
import { holdsVip, parseServerLine, parseVipLine, serverWatch, sqlFrom, vipWatch } from './probes.ts';
import { Recording, type Request } from './record.ts';
import { buckets, percentiles } from './stats.ts';
import type { Cluster } from '../cluster.ts';
import type { Percentiles, ScenarioReport, SpikeStep, Threshold } from './types.ts';
import type { Target } from './target.ts';

export interface Thresholds {
  webFailedRequests: number;
  /** Unset in the inventory: detectionLimit(). */
  webDetectionMs?: number;
  lbHardTakeoverMs: number;
  lbGracefulTakeoverMs: number;
  spikeErrors: number;
}

export interface Context {
  cluster: Cluster;
  inv: Inventory;
  /** The VIP's URL. */
  /** Where the load goes (the VIP over HTTP, or HTTPS). */
  target: Target;
  rate: number;
  thresholds: Thresholds;
  undo: Undo;
  /** Progress for the user: one line per step. */
  say(msg: string): void;
  signal: AbortSignal;
  /** LB address -> name, for the X-Served-Via header. */
  lbByAddress: Map<string, string>;
  /** The controller watches the VIP's neighbour entry (gratuitous ARPs) when it shares its network. */
  watchArps?(rec: Recording, seconds: number, signal: AbortSignal): void;
  /** MAC address -> LB name. */
  lbByMac: Map<string, string>;
  spike: { factors: number[]; stepSeconds: number };
}

/**
 * The user interrupted the test: the scenario stops where it is and leaves its faults to the undo
 * (which says what it undoes), its figures unmeasured.
 */
export class Interrupted extends Error {
  constructor() {
    super('interrupted');
  }
}

/** Waits `ms`; with a signal, an interruption ends the wait with Interrupted. */
export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((res, rej) => {
    if (signal?.aborted) return rej(new Interrupted());
    const onAbort = () => (clearTimeout(t), rej(new Interrupted()));
    const t = setTimeout(() => (signal?.removeEventListener('abort', onAbort), res()), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Polls `cond` every 50 ms until it returns a value (not null) or `ms` pass; null then. An interruption ends it with Interrupted. */
export async function until<T>(ms: number, cond: () => T | null | Promise<T | null>, signal?: AbortSignal): Promise<T | null> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (signal?.aborted) throw new Interrupted();
    const v = await cond();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) return null;
    await sleep(50);
  }
}

/** The units of the inventory's runtime. */
const unitsOf = (inv: Inventory) => ({ proxy: runtimeOf(inv).proxyUnit, vrrp: runtimeOf(inv).vrrpUnit });

const BEFORE_MS = 3000;
const AFTER_MS = 3000;
/** The longest a scenario's load and watchers may run (every load is bounded). */
const MAX_SCENARIO_S = 120;

export interface Running {
  rec: Recording;
  stop(): Promise<void>;
}

/** Starts the load through the VIP and the watchers for one scenario. */
export function start(ctx: Context, lbs: string[], rateAt?: (t: number) => number): Running {
  const { cluster, inv } = ctx;
  const t0 = cluster.now();
  const rec = new Recording(t0);
  const ac = new AbortController();
  const stopAll = () => ac.abort();
  ctx.signal.addEventListener('abort', stopAll, { once: true });
  const load = runLoad({
    url: ctx.target.url,
    connect: ctx.target.connect,
    rate: ctx.rate,
    rateAt: rateAt ? (t) => rateAt(t0 + t) : undefined,
    durationMs: MAX_SCENARIO_S * 1000,
    signal: ac.signal,
    timeoutMs: 10_000,
    onConnection: (c) => rec.connection(c),
    onSample: (s) => {
      const r: Request = { ...s, t: t0 + s.t };
      if (s.connectedAt !== undefined) r.connectedAt = t0 + s.connectedAt;
      if (s.dialedAt !== undefined) r.dialedAt = t0 + s.dialedAt;
      if (s.via) r.lb = ctx.lbByAddress.get(s.via) ?? s.via;
      rec.requests.push(r);
    },
  });
  const watchers: Promise<void>[] = [];
  for (const lb of lbs) {
    watchers.push(
      cluster.watch(
        lb,
        serverWatch,
        MAX_SCENARIO_S,
        (l) => {
          const m = parseServerLine(l.text);
          if (m) rec.view(lb, l.t, m);
        },
        ac.signal,
      ),
      cluster.watch(
        lb,
        vipWatch(inv),
        MAX_SCENARIO_S,
        (l) => {
          const has = parseVipLine(l.text, inv);
          if (has !== null) rec.vip.push({ t: l.t, lb, has });
        },
        ac.signal,
      ),
    );
  }
  ctx.watchArps?.(rec, MAX_SCENARIO_S, ac.signal);
  return {
    rec,
    async stop() {
      ac.abort();
      ctx.signal.removeEventListener('abort', stopAll);
      await load;
      await Promise.all(watchers);
      rec.requests.sort((a, b) => a.t - b.t);
    },
  };
}

const lat = (rs: Request[]): Percentiles => percentiles(rs.filter((r) => !failed(r)).map((r) => r.ms));

export function threshold(figure: string, max: number, actual: number | null): Threshold {
  return { figure, max, actual, passed: actual !== null && actual <= max };
}

/** The parts every scenario reports the same way. */
export function finish(
  ctx: Context,
  base: Pick<ScenarioReport, 'name' | 'title'>,
  rec: Recording,
  fault: number,
  heal: number,
  end: number,
  rest: Partial<ScenarioReport>,
  initialHolder?: string,
): ScenarioReport {
  const thresholds = rest.thresholds ?? [];
  const failures = rec.failures();
  const report: ScenarioReport = {
    ...base,
    from: Math.round(rec.from),
    to: Math.round(end),
    totalRequests: rec.requests.length,
    failedRequests: failures.length,
    connectionsReset: failures.filter((f) => f.error === 'ECONNRESET').length,
    latency: { before: lat(rec.inWindow(rec.from, fault)), during: lat(rec.inWindow(fault, heal)), after: lat(rec.inWindow(heal, end)) },
    thresholds,
    passed: thresholds.every((x) => x.passed),
    verdict: '',
    events: rec.events.sort((a, b) => a.t - b.t).map((e) => ({ ...e, t: Math.round(e.t) })),
    series: buckets(rec.requests, rec.from, end, (t) => rec.holderAt(t, initialHolder)),
    failures,
    ...rest,
  };
  report.passed = report.thresholds.every((x) => x.passed);
  return report;
}

/**
 * The default limit on a dead web node's detection: the longest the health check may take by its
 * settings (a check just passed, the next times out, then fall - 1 fast checks time out:
 * inter + timeout + (fall - 1) x (fastinter + timeout)) plus 1 s for what the measure adds: the SSH
 * round trip that injects the fault (counted from when it was sent) and the stats polled every 100 ms
 * on each LB. 2,350 ms with the defaults.
 */
export function detectionLimit(inv: Inventory): number {
  const h = inv.roles.proxy.healthCheck;
  return h.inter + h.timeout + (h.fall - 1) * (h.fastinter + h.timeout) + 1000;
}

export const round = (x: number | null): number | null => (x === null ? null : Math.round(x));

/** A few seconds of steady load without a fault, then the fault: when it was injected. */
export async function injectAfterCalm(ctx: Context, rec: Recording, title: string, f: Fault): Promise<number> {
  await sleep(BEFORE_MS, ctx.signal);
  ctx.say(`${title}: ${f.what}`);
  const t = rec.event(ctx.cluster.now(), 'fault', f.what);
  await ctx.undo.inject(f);
  return t;
}

/** The fault undone on its host: when the healing began. */
async function healNow(ctx: Context, rec: Recording, title: string, f: Fault, host: string): Promise<number> {
  ctx.say(`${title}: healing ${host}`);
  const t = rec.event(ctx.cluster.now(), 'healed', `${host} healed`);
  await ctx.undo.undo(f);
  return t;
}

// ---------------------------------------------------------------------------------------------
// web: a web node fails (Apache stopped, then its packets dropped)

async function webScenario(ctx: Context, name: string, title: string, f: Fault, web: string): Promise<ScenarioReport> {
  const lbs = ctx.cluster.hosts('lb').map((h) => h.name);
  const run = start(ctx, lbs);
  const { rec } = run;
  let [fault, heal] = [rec.from, rec.from];
  let detected: number | null;
  let upAgain: number | null = null;
  let servedAgain: Request | undefined;
  try {
    fault = await injectAfterCalm(ctx, rec, title, f);
    detected = await until(15_000, () => rec.allSee(lbs, web, fault, (s) => !!s && /^DOWN/.test(s.status)), ctx.signal);
    if (detected !== null) rec.event(detected, 'detected', `${web} DOWN in both proxies`);
    await sleep(3000, ctx.signal);
    heal = await healNow(ctx, rec, title, f, web);
    upAgain = await until(20_000, () => rec.allSee(lbs, web, heal, (s) => s?.status === 'UP'), ctx.signal);
    servedAgain = (await until(10_000, () => rec.firstServed(upAgain ?? heal, (r) => r.node === web) ?? null, ctx.signal)) ?? undefined;
    if (servedAgain) rec.event(servedAgain.t, 'restored', `${web} UP and serving again`);
    await sleep(AFTER_MS, ctx.signal);
  } finally {
    await run.stop();
  }
  const end = ctx.cluster.now();
  const detectionMs = detected === null ? null : detected - fault;
  const restoredMs = servedAgain ? servedAgain.t - heal : null;
  const failedN = rec.failures().length;
  const t = ctx.thresholds;
  const report = finish(ctx, { name, title }, rec, fault, heal, end, {
    detectionMs: round(detectionMs) ?? undefined,
    restoredMs: round(restoredMs) ?? undefined,
    shareDuringFault: rec.share(detected ?? fault, heal),
    thresholds: [
      threshold('failedRequests', t.webFailedRequests, failedN),
      threshold('detectionMs', t.webDetectionMs ?? detectionLimit(ctx.inv), round(detectionMs)),
    ],
  });
  report.verdict =
    detectionMs === null
      ? `${web} was never marked DOWN by both proxies within 15 s`
      : `${failedN === 0 ? 'no request failed' : `${failedN} of ${report.totalRequests} requests failed`}; both proxies took ${web} out of rotation ${(detectionMs / 1000).toFixed(2)} s after the fault` +
        (restoredMs !== null
          ? `, and it served again ${(restoredMs / 1000).toFixed(2)} s after it was healed`
          : ', and it did not serve again within 30 s of the heal');
  return report;
}

export const webStop = (ctx: Context) => {
  const web = ctx.cluster.hosts('web')[0].name;
  return webScenario(ctx, 'web-stop', `web: Apache stopped on ${web}`, apacheStopped(ctx.cluster, web), web);
};

export const webDrop = (ctx: Context) => {
  const web = ctx.cluster.hosts('web')[0].name;
  return webScenario(ctx, 'web-drop', `web: ${web}'s packets dropped`, webDropped(ctx.cluster, ctx.inv, web), web);
};

// ---------------------------------------------------------------------------------------------
// lb: the master LB fails (killed, its link down) or is stopped

/** The LB that holds the VIP now, and the other one. */
export async function masterAndBackup(ctx: Context): Promise<{ master: string; backup: string }> {
  const lbs = ctx.cluster.hosts('lb').map((h) => h.name);
  const holders: string[] = [];
  for (const lb of lbs) if ((await ctx.cluster.exec(lb, holdsVip(ctx.inv))).code === 0) holders.push(lb);
  if (holders.length !== 1) throw new Error(`the VIP is on ${holders.join(' and ') || 'no LB'}: exactly one LB must hold it`);
  return { master: holders[0], backup: lbs.find((l) => l !== holders[0]) as string };
}

async function lbScenario(
  ctx: Context,
  name: string,
  title: string,
  make: (master: string) => Fault,
  kind: 'hard' | 'graceful',
  /** Held to losing only the requests in flight on the LB that loses the VIP (and the VIP leaving a killed master). */
  exact = false,
): Promise<ScenarioReport> {
  const { master, backup } = await masterAndBackup(ctx);
  const lbs = [master, backup];
  const f = make(master);
  const run = start(ctx, lbs);
  const { rec } = run;
  const now = ctx.cluster.now;
  let [fault, heal] = [rec.from, rec.from];
  let injected: number;
  let firstVia: Request | undefined;
  let lastVia: Request | undefined;
  let back: Request | undefined;
  let vipOnBackup: number | null;
  let vipBack: number | null;
  try {
    fault = await injectAfterCalm(ctx, rec, title, f);
    injected = now();
    firstVia = (await until(15_000, () => rec.firstServed(fault, (r) => r.lb === backup) ?? null, ctx.signal)) ?? undefined;
    vipOnBackup = rec.vipOn(backup, fault);
    if (firstVia) rec.event(firstVia.t, 'takeover', `first request served through ${backup}`);
    lastVia = rec.lastServed(firstVia?.t ?? now(), (r) => r.lb === master);
    await sleep(3000, ctx.signal);
    heal = await healNow(ctx, rec, title, f, master);
    // preemption: the master takes the VIP back (after its preempt_delay)
    back = (await until(40_000, () => rec.firstServed(heal, (r) => r.lb === master) ?? null, ctx.signal)) ?? undefined;
    vipBack = rec.vipOn(master, heal);
    if (back) rec.event(back.t, 'restored', `${master} holds the VIP and serves again`);
    await sleep(AFTER_MS, ctx.signal);
  } finally {
    await run.stop();
  }
  const end = now();
  const takeoverMs = firstVia && lastVia ? firstVia.t - lastVia.t : firstVia ? firstVia.t - fault : null;
  const t = ctx.thresholds;
  const max = kind === 'hard' ? t.lbHardTakeoverMs : t.lbGracefulTakeoverMs;
  const arp = rec.arps.find((a) => a.t >= fault && ctx.lbByMac.get(a.mac) === backup);
  const fl = inFlight(rec, {
    fault,
    away: movedTo(rec, ctx.lbByMac, backup, fault, vipOnBackup)?.at ?? injected,
    returned: movedTo(rec, ctx.lbByMac, master, heal, vipBack) ?? (back ? { from: back.t, at: back.t } : null),
  });
  const vipLeftMs = (f as LbKill).vipLeftMs;
  const report = finish(
    ctx,
    { name, title },
    rec,
    fault,
    heal,
    end,
    {
      takeoverMs: round(takeoverMs) ?? undefined,
      restoredMs: back ? Math.round(back.t - heal) : undefined,
      thresholds: [
        threshold('takeoverMs', max, round(takeoverMs)),
        // a dead daemon takes the VIP with it: only the requests in flight on the master are lost
        ...(exact ? [threshold('vipLeftMasterMs', 2000, vipLeftMs ?? null), threshold('failedNotInFlight', 0, fl.notInFlight)] : []),
      ],
      figures: {
        master,
        backup,
        ...(vipLeftMs !== undefined ? { vipLeftMasterMs: vipLeftMs } : {}),
        connectionsOpenOnMaster: fl.openAtFault,
        failedInFlightOnMaster: fl.lostAtFault,
        connectionsOpenAtReturn: fl.openAtReturn,
        failedInFlightAtReturn: fl.lostAtReturn,
        failedNotInFlight: fl.notInFlight,
        vipOnBackupMs: vipOnBackup === null ? null : Math.round(vipOnBackup - fault),
        garpSeenMs: arp ? Math.round(arp.t - fault) : null,
        vipBackOnMasterMs: vipBack === null ? null : Math.round(vipBack - heal),
        preemptedBack: !!back,
      },
    },
    master,
  );
  if (vipOnBackup !== null) report.events.push({ t: Math.round(vipOnBackup), kind: 'takeover', what: `VIP on ${backup}` });
  if (arp) report.events.push({ t: Math.round(arp.t), kind: 'note', what: `gratuitous ARP for the VIP from ${backup}` });
  const arpBack = rec.arps.find((a) => a.t >= heal && ctx.lbByMac.get(a.mac) === master);
  if (arpBack) report.events.push({ t: Math.round(arpBack.t), kind: 'note', what: `gratuitous ARP for the VIP from ${master}` });
  report.events.sort((a, b) => a.t - b.t);
  const failedN = report.failedRequests;
  report.verdict =
    takeoverMs === null
      ? `${backup} did not serve the VIP within 15 s of the fault`
      : `${backup} took over ${(takeoverMs / 1000).toFixed(3)} s after the last request served through ${master}` +
        `; ${
          failedN === 0
            ? 'no request failed'
            : `${failedN} requests failed: ${fl.lostAtFault} in flight on the ${fl.openAtFault} connections open on ${master} at the fault, ` +
              `${fl.lostAtReturn} on the ${fl.openAtReturn} open when it took the VIP back, ${fl.notInFlight} not in flight on the LB that lost the VIP`
        }` +
        (back
          ? `; ${master} took the VIP back ${((back.t - heal) / 1000).toFixed(1)} s after it was healed`
          : `; ${master} did not take the VIP back within 40 s`);
  return report;
}

export const lbKill = (ctx: Context) =>
  lbScenario(
    ctx,
    'lb-kill',
    'lb: the master killed (VRRP daemon and proxy, SIGKILL)',
    (m) => lbKilled(ctx.cluster, ctx.inv, m, unitsOf(ctx.inv)),
    'hard',
    true,
  );
export const lbLink = (ctx: Context) =>
  lbScenario(ctx, 'lb-link', "lb: the master's link down", (m) => lbLinkDown(ctx.cluster, ctx.inv, m, 8), 'hard');
export const lbStop = (ctx: Context) =>
  lbScenario(ctx, 'lb-stop', 'lb: the master stopped (graceful)', (m) => lbStopped(ctx.cluster, m, unitsOf(ctx.inv)), 'graceful');

// ---------------------------------------------------------------------------------------------
// db: the application's account, from a web node; the replica; the primary down

export async function dbScenario(ctx: Context): Promise<ScenarioReport[]> {
  const { cluster, inv } = ctx;
  const web = cluster.hosts('web')[0].name;
  const dbs = cluster.hosts('db');
  const primary = dbs.find((d) => d.primary) ?? dbs[0];
  const replica = dbs.find((d) => d !== primary);
  const now = cluster.now;
  const t0 = now();
  const rec = new Recording(t0);
  const q = (addr: string, sql: string) => {
    const s = sqlFrom(inv, addr, sql);
    return cluster.exec(web, s.script, { stdin: s.stdin });
  };
  const mark = `hasetup-${Date.now()}`;
  const w0 = now();
  const write = await q(
    primary.address,
    `CREATE TABLE IF NOT EXISTS hasetup_failover (id INT AUTO_INCREMENT PRIMARY KEY, mark VARCHAR(64), at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP(3)); INSERT INTO hasetup_failover (mark) VALUES ('${mark}'); SELECT mark FROM hasetup_failover WHERE mark = '${mark}'`,
  );
  const writeMs = now() - w0;
  rec.event(w0, 'note', `write and read on ${primary.name} from ${web}`);
  const ok = write.code === 0 && write.stdout.trim() === mark;
  const figures: NonNullable<ScenarioReport['figures']> = {
    primary: primary.name,
    from: web,
    writeReadOk: ok,
    writeReadMs: Math.round(writeMs),
    replica: replica?.name ?? null,
  };
  let lagMs: number | null = null;
  if (replica && ok) {
    const seen = await until(30_000, async () =>
      (await q(replica.address, `SELECT COUNT(*) FROM hasetup_failover WHERE mark = '${mark}'`)).stdout.trim() === '1' ? now() : null,
    );
    lagMs = seen === null ? null : seen - w0;
    const sbm = await cluster.exec(replica.name, `mariadb -e 'SHOW REPLICA STATUS\\G' | sed -n 's/^ *Seconds_Behind_Master: //p'`);
    figures.rowOnReplicaMs = lagMs === null ? null : Math.round(lagMs);
    figures.secondsBehindMaster = sbm.stdout.trim() === '' || sbm.stdout.trim() === 'NULL' ? null : Number(sbm.stdout.trim());
  }
  await q(primary.address, `DELETE FROM hasetup_failover WHERE mark = '${mark}'`);
  const end = now();
  const db: ScenarioReport = {
    name: 'db',
    title: `db: a write and a read with the application's account, from ${web}`,
    from: Math.round(t0),
    to: Math.round(end),
    totalRequests: 1,
    failedRequests: ok ? 0 : 1,
    latency: { before: percentiles([]), during: percentiles(ok ? [writeMs] : []), after: percentiles([]) },
    thresholds: [threshold('failedRequests', 0, ok ? 0 : 1), ...(replica ? [threshold('rowOnReplicaMs', 30_000, round(lagMs))] : [])],
    passed: false,
    verdict: ok
      ? `${web} wrote and read a row on ${primary.name} in ${Math.round(writeMs)} ms` +
        (replica
          ? lagMs !== null
            ? `; the row was on ${replica.name} ${Math.round(lagMs)} ms later`
            : `; the row never reached ${replica.name}`
          : '; no replica in this cluster')
      : `${web} could not write and read with the application's account: ${(write.stderr || write.stdout).trim().split('\n')[0]}`,
    events: rec.events.map((e) => ({ ...e, t: Math.round(e.t) })),
    series: [],
    failures: ok
      ? []
      : [
          {
            t: Math.round(w0),
            ms: Math.round(writeMs),
            kind: 'new',
            status: 0,
            error: (write.stderr || write.stdout).trim().split('\n')[0],
          },
        ],
    figures,
  };
  db.passed = db.thresholds.every((x) => x.passed);
  if (!replica) return [db];

  // the primary down: what the application sees (no automatic failover in this cluster)
  const f = mariadbStopped(cluster, primary.name);
  ctx.say(`db: ${f.what}`);
  const d0 = now();
  await ctx.undo.inject(f);
  const during = await q(primary.address, 'SELECT 1');
  const onReplica = await q(replica.address, 'SELECT COUNT(*) FROM hasetup_failover');
  await ctx.undo.undo(f);
  const backOk = await until(30_000, async () => ((await q(primary.address, 'SELECT 1')).code === 0 ? now() : null));
  const d1 = now();
  const sees = (during.stderr || during.stdout).trim().split('\n')[0];
  const down: ScenarioReport = {
    name: 'db-primary-down',
    title: `db: MariaDB stopped on ${primary.name} (the primary)`,
    from: Math.round(d0),
    to: Math.round(d1),
    totalRequests: 2,
    failedRequests: during.code === 0 ? 0 : 1,
    latency: { before: percentiles([]), during: percentiles([]), after: percentiles([]) },
    thresholds: [threshold('restoredMs', 30_000, backOk === null ? null : Math.round(backOk - d0))],
    passed: false,
    verdict:
      `the application on ${web} sees: ${during.code === 0 ? 'its query answered' : sees}; ` +
      `${replica.name} still answers reads (${onReplica.code === 0 ? 'yes' : 'no'}) but is not promoted: this cluster has no automatic database failover` +
      (backOk !== null
        ? `; ${primary.name} answered again ${Math.round(backOk - d0)} ms after the stop`
        : `; ${primary.name} did not answer again within 30 s`),
    events: [
      { t: Math.round(d0), kind: 'fault', what: f.what },
      ...(backOk !== null ? [{ t: Math.round(backOk), kind: 'restored' as const, what: `${primary.name} answers again` }] : []),
    ],
    series: [],
    failures: during.code === 0 ? [] : [{ t: Math.round(d0), ms: 0, kind: 'new', status: 0, error: sees }],
    restoredMs: backOk === null ? undefined : Math.round(backOk - d0),
    figures: { applicationSees: during.code === 0 ? 'answer' : sees, replicaAnswers: onReplica.code === 0, automaticFailover: false },
  };
  down.passed = down.thresholds.every((x) => x.passed);
  return [db, down];
}

// ---------------------------------------------------------------------------------------------
// spike: the rate in steps; the cluster should queue (latency up), not fail

export async function spike(ctx: Context): Promise<ScenarioReport> {
  const { master } = await masterAndBackup(ctx);
  const factors = ctx.spike.factors;
  const stepMs = ctx.spike.stepSeconds * 1000;
  const now = ctx.cluster.now;
  const t0 = now();
  const rateAt = (t: number) => ctx.rate * factors[Math.min(factors.length - 1, Math.max(0, Math.floor((t - t0) / stepMs)))];
  const run = start(ctx, [master], rateAt);
  const { rec } = run;
  ctx.say(`spike: ${factors.map((f) => `x${f}`).join(', ')} of ${ctx.rate} req/s, ${ctx.spike.stepSeconds} s each`);
  for (let i = 0; i < factors.length; i++) rec.event(t0 + i * stepMs, 'step', `x${factors[i]}: ${ctx.rate * factors[i]} req/s`);
  try {
    await sleep(stepMs * factors.length, ctx.signal);
  } finally {
    await run.stop();
  }
  const end = now();
  const steps: SpikeStep[] = factors.map((f, i) => {
    const from = t0 + i * stepMs;
    const to = from + stepMs;
    const rs = rec.inWindow(from, to);
    const answered = rs.filter((r) => !failed(r));
    const views = (rec.views.get(master) ?? []).filter((v) => v.t >= from && v.t < to + 1000);
    const p = percentiles(answered.map((r) => r.ms));
    return {
      rate: ctx.rate * f,
      served: Math.round((answered.length / stepMs) * 1000),
      p50: p.p50,
      p99: p.p99,
      errors: rs.length - answered.length,
      maxQueue: Math.max(0, ...views.flatMap((v) => [...v.servers.values()].map((s) => s.queued))),
      maxSessions: Math.max(0, ...views.flatMap((v) => [...v.servers.values()].map((s) => s.sessions))),
    };
  });
  const errors = steps.reduce((n, s) => n + s.errors, 0);
  const report = finish(
    ctx,
    { name: 'spike', title: `spike: the rate x${factors.join(', x')}` },
    rec,
    t0,
    end,
    end,
    {
      steps,
      thresholds: [threshold('errors', ctx.thresholds.spikeErrors, errors)],
    },
    master,
  );
  const first = steps[0];
  const last = steps[steps.length - 1];
  const queued = steps.some((s) => s.maxQueue > 0);
  report.verdict =
    errors === 0
      ? `no request failed up to ${last.rate} req/s (served ${last.served}); p99 went from ${first.p99} ms to ${last.p99} ms` +
        (queued
          ? `, requests waiting in ${master}'s queue (up to ${Math.max(...steps.map((s) => s.maxQueue))}) rather than overflowing Apache`
          : ", and no request had to wait in the proxy's queue")
      : `${errors} requests failed during the spike (${steps.map((s) => `${s.rate}/s: ${s.errors}`).join(', ')})`;
  return report;
}
