// Taking a web node out of rotation on both LBs and putting it back, with either runtime: the runtime
// API on each LB's stats socket for the immediate change (the backup first, as the LBs' reloads go),
// a record on each LB so that the proxy role keeps the state in haproxy.cfg (a reload, a re-apply),
// and the proxies' own view (`show stat`) to wait on: sessions gone, the node UP again.
// (`hasetup drain` and `undrain` in cli/commands/drain.ts, and the rolling apply, drive it.)
import type { Host, Inventory } from '../../inventory/types.ts';
import type { Cluster } from '../cluster.ts';
import { shq } from '../engine/shell.ts';
import { parseShowStat, type ServerView } from '../status/probe.ts';
import { DRAIN_RECORD_DIR, drainRecordPath, holdsVip, STATS_SOCKET } from '../../roles/lb.ts';

export const BACKEND = 'web';

/** One runtime API command on an LB (the same text for HAProxy and hasetup-proxy), as sh. */
export const apiCommand = (cmd: string, socket = STATS_SOCKET): string =>
  `printf '%s\\n' ${shq(cmd)} | timeout 5 socat -t5 - UNIX-CONNECT:${shq(socket)}`;

/** The commands that put a server in a state: HAProxy's `set server B/S state ready|drain|maint`. */
export const setStateCommand = (server: string, state: 'ready' | 'drain' | 'maint'): string =>
  `set server ${BACKEND}/${server} state ${state}`;

/**
 * The answer of `set server ... state`: HAProxy and hasetup-proxy print nothing on success, a
 * reason otherwise ("No such server.", "Permission denied").
 */
export function apiError(answer: string): string | null {
  const a = answer.trim();
  return a === '' ? null : a;
}

/** The LBs in the order their changes go: the one without the VIP first. */
export async function lbOrder(c: Cluster, inv: Inventory): Promise<Host[]> {
  const lbs = c.hosts('lb');
  const holds = await Promise.all(
    lbs.map((lb) =>
      c.exec(lb.name, holdsVip(inv)).then(
        (r) => r.code === 0,
        () => false,
      ),
    ),
  );
  return lbs
    .map((lb, i) => ({ lb, holds: holds[i] }))
    .sort((a, b) => Number(a.holds) - Number(b.holds))
    .map((x) => x.lb);
}

/** Each LB's view of the web backend. */
export async function views(c: Cluster, lbs: Host[]): Promise<Map<string, ServerView[]>> {
  const out = new Map<string, ServerView[]>();
  await Promise.all(
    lbs.map(async (lb) => {
      const r = await c.exec(lb.name, apiCommand('show stat'));
      if (r.code !== 0) throw new Error(`${lb.name}: the runtime API does not answer on ${STATS_SOCKET}: ${(r.stderr || r.stdout).trim()}`);
      out.set(
        lb.name,
        parseShowStat(r.stdout).filter((s) => s.backend === BACKEND),
      );
    }),
  );
  return out;
}

/** The web nodes other than `except` that serve on every LB (UP, not drained or in maintenance). */
export function othersServing(v: Map<string, ServerView[]>, except: string): string[] {
  const lists = [...v.values()];
  const names = new Set(lists.flatMap((l) => l.map((s) => s.server)));
  return [...names].filter((n) => n !== except && lists.every((l) => l.find((s) => s.server === n)?.status === 'UP'));
}

/** Sets a server's state on each LB in turn; fails with the LB's answer. */
export async function setState(c: Cluster, lbs: Host[], server: string, state: 'ready' | 'drain' | 'maint'): Promise<void> {
  for (const lb of lbs) {
    const r = await c.exec(lb.name, apiCommand(setStateCommand(server, state)));
    const err = r.code === 0 ? apiError(r.stdout) : (r.stderr || r.stdout).trim() || `exit ${r.code}`;
    if (err) throw new Error(`${lb.name}: set server ${BACKEND}/${server} state ${state}: ${err}`);
  }
}

/** Records (or, with null, forgets) the node's state on each LB, where the proxy role reads it. */
export async function record(c: Cluster, lbs: Host[], server: string, state: 'drain' | 'maint' | null): Promise<void> {
  const f = shq(drainRecordPath(server));
  const script = state ? `mkdir -p ${DRAIN_RECORD_DIR} && printf '%s\\n' ${state} > ${f}.new && mv -f ${f}.new ${f}` : `rm -f ${f}`;
  for (const lb of lbs) await c.sh(lb.name, script);
}

/** Sessions the node still has, per LB. */
export const sessionsOf = (v: Map<string, ServerView[]>, server: string): Record<string, number> =>
  Object.fromEntries([...v].map(([lb, l]) => [lb, l.find((s) => s.server === server)?.sessions ?? 0]));

/**
 * Polls the LBs' views every 200 ms until `done(view)` holds, or `seconds` pass, or `signal` fires.
 * Returns the last view and whether it held.
 */
export async function waitViews(
  c: Cluster,
  lbs: Host[],
  seconds: number,
  done: (v: Map<string, ServerView[]>) => boolean,
  signal?: AbortSignal,
): Promise<{ ok: boolean; view: Map<string, ServerView[]>; ms: number }> {
  const t0 = Date.now();
  for (;;) {
    const view = await views(c, lbs);
    if (done(view)) return { ok: true, view, ms: Date.now() - t0 };
    if (Date.now() - t0 > seconds * 1000 || signal?.aborted) return { ok: false, view, ms: Date.now() - t0 };
    await new Promise((r) => setTimeout(r, 200));
  }
}
