// The partition scenario: VRRP between the two LBs blocked both ways while both still reach the
// clients and the web nodes. Each LB then hears no advert from the other, so the backup becomes
// master too and both hold the VIP (a split brain: what `hasetup status` reports as a problem). The
// test measures how long both hold it and what the clients see meanwhile (the last gratuitous ARP
// decides which LB their packets reach), then lets VRRP through again: the LB of the lower priority
// steps down at the first advert it hears, and one holder must remain within a bounded time, the
// clients' traffic back on it.
import { inFlight, movedTo } from './inflight.ts';
import { vrrpBlocked } from './faults.ts';
import { failed } from './load.ts';
import type { Recording } from './record.ts';
import { finish, masterAndBackup, round, sleep, start, threshold, until, type Context } from './scenarios.ts';
import type { ScenarioReport } from './types.ts';

/** How long VRRP stays blocked once both LBs hold the VIP. */
const SPLIT_MS = 5000;
/** The most the split may take to appear (the backup's Master_Down_Interval is well under 1 s). */
const SPLIT_SEEN_MS = 10_000;
/** The most the heal may take to leave one holder: a few adverts (0.2 s each by default). */
export const PARTITION_HEAL_MS = 3000;

/** The LBs holding the VIP at each change, from the VIP's add/remove events (the master holding it at first). */
export function holdersOver(rec: Recording, initial: string[]): { t: number; holders: string[] }[] {
  const now = new Set(initial);
  const out: { t: number; holders: string[] }[] = [];
  for (const v of [...rec.vip].sort((a, b) => a.t - b.t)) {
    if (v.has) now.add(v.lb);
    else now.delete(v.lb);
    out.push({ t: v.t, holders: [...now].sort() });
  }
  return out;
}

export async function partition(ctx: Context): Promise<ScenarioReport> {
  const { master, backup } = await masterAndBackup(ctx);
  const lbs = [master, backup];
  const addr = (n: string) => ctx.cluster.hosts('lb').find((h) => h.name === n)!.address;
  const faults = [vrrpBlocked(ctx.cluster, master, addr(backup)), vrrpBlocked(ctx.cluster, backup, addr(master))];
  const title = `partition: VRRP between ${master} and ${backup} blocked`;
  const run = start(ctx, lbs);
  const { rec } = run;
  const now = ctx.cluster.now;
  const over = () => holdersOver(rec, [master]);
  let fault = rec.from;
  let heal = rec.from;
  let injected: number;
  let split: number | null;
  let one: number | null = null;
  let servedAgain: number | null;
  try {
    await sleep(3000, ctx.signal);
    ctx.say(`${title} (both ways), for ${SPLIT_MS / 1000} s once both hold the VIP`);
    fault = rec.event(now(), 'fault', `VRRP between ${master} and ${backup} blocked both ways`);
    await Promise.all(faults.map((f) => ctx.undo.inject(f)));
    injected = now();
    split = await until(SPLIT_SEEN_MS, () => over().find((x) => x.t >= fault && x.holders.length > 1)?.t ?? null, ctx.signal);
    if (split !== null) rec.event(split, 'detected', `two VIP holders: ${master} and ${backup}`);
    await sleep(SPLIT_MS, ctx.signal);
    ctx.say(`${title}: VRRP allowed again`);
    heal = rec.event(now(), 'healed', 'VRRP between the LBs allowed again');
    await Promise.all(faults.map((f) => ctx.undo.undo(f)));
    one = await until(
      PARTITION_HEAL_MS + 5000,
      () => over().find((x) => x.t >= heal && x.holders.length === 1 && x.holders[0] === master)?.t ?? null,
      ctx.signal,
    );
    if (one !== null) rec.event(one, 'restored', `the VIP on ${master} alone`);
    servedAgain = await until(15_000, () => rec.firstServed(one ?? heal, (r) => r.lb === master)?.t ?? null, ctx.signal);
    await sleep(3000, ctx.signal);
  } finally {
    await run.stop();
  }
  const end = now();
  // which LB the clients reached during the split (their neighbour entry: the last gratuitous ARP)
  const during = rec.inWindow(split ?? fault, heal).filter((r) => !failed(r) && r.lb);
  const via: Record<string, number> = {};
  for (const r of during) via[r.lb!] = (via[r.lb!] ?? 0) + 1;
  const moved = rec.vipOn(backup, fault);
  const fl = inFlight(rec, {
    fault,
    away: movedTo(rec, ctx.lbByMac, backup, fault, moved)?.at ?? injected,
    returned: one === null ? null : movedTo(rec, ctx.lbByMac, master, heal, one),
  });
  const splitMs = split === null ? null : (one ?? end) - split;
  const healMs = one === null ? null : one - heal;
  const report = finish(
    ctx,
    { name: 'partition', title },
    rec,
    fault,
    heal,
    end,
    {
      restoredMs: servedAgain === null ? undefined : Math.round(servedAgain - heal),
      thresholds: [
        // the split must show (or the scenario proved nothing), and end with one holder
        threshold('twoHoldersSeenMs', SPLIT_SEEN_MS, split === null ? null : round(split - fault)),
        threshold('oneHolderAfterHealMs', PARTITION_HEAL_MS, round(healMs)),
        // the clients lose only the requests in flight on the LB their traffic left
        threshold('failedNotInFlight', 0, fl.notInFlight),
      ],
      figures: {
        master,
        backup,
        bothHeldMs: round(splitMs),
        servedDuringSplit: Object.entries(via)
          .map(([lb, n]) => `${lb} ${n}`)
          .join(', '),
        connectionsOpenOnMaster: fl.openAtFault,
        failedInFlightOnMaster: fl.lostAtFault,
        connectionsOpenAtReturn: fl.openAtReturn,
        failedInFlightAtReturn: fl.lostAtReturn,
        failedNotInFlight: fl.notInFlight,
      },
    },
    master,
  );
  const failedN = report.failedRequests;
  report.verdict =
    split === null
      ? `the VIP was never on both LBs within ${SPLIT_SEEN_MS / 1000} s of blocking VRRP: the partition did not take`
      : `both LBs held the VIP for ${((splitMs ?? 0) / 1000).toFixed(1)} s (from ${((split - fault) / 1000).toFixed(2)} s after VRRP was blocked)` +
        `; the clients went through ${Object.keys(via).join(' and ') || 'no LB'} meanwhile` +
        (healMs === null
          ? `; ${master} was not the only holder within ${(PARTITION_HEAL_MS + 5000) / 1000} s of the heal`
          : `; ${healMs < 1 ? 'at once' : `${(healMs / 1000).toFixed(2)} s`} after the heal ${master} alone held it`) +
        `; ${failedN === 0 ? 'no request failed' : `${failedN} requests failed (${fl.notInFlight} not in flight on the LB that lost the traffic)`}`;
  return report;
}
