// What one scenario records while it runs: every request of the load (with the web node that
// served it and the LB it went through), each proxy's view of the web nodes every 100 ms, the VIP
// appearing on and leaving each LB, the gratuitous ARPs the controller saw, and the moments that
// matter (faults, heals). And the queries on that record the scenarios' figures are made of.
import { failed, type Connection, type Sample } from './load.ts';
import type { FailedRequest, TimelineEvent } from './types.ts';
import type { ServerSample } from './probes.ts';

/** A request of the load, on the test's clock, with the LB it went through. */
export interface Request extends Sample {
  lb?: string;
}

export class Recording {
  readonly requests: Request[] = [];
  /** lb -> samples of its proxy's view: t, server -> state */
  readonly views = new Map<string, { t: number; servers: Map<string, ServerSample> }[]>();
  /** The VIP added (true) to or removed (false) from an LB, as that LB reported it. */
  readonly vip: { t: number; lb: string; has: boolean }[] = [];
  /** Gratuitous ARPs (or any neighbour change) for the VIP seen by the controller: the MAC it now points to. */
  readonly arps: { t: number; mac: string }[] = [];
  readonly events: TimelineEvent[] = [];
  /** The load's TCP connections (their times on the load's clock: `from` later than the test's). */
  private readonly conns: Connection[] = [];

  constructor(readonly from: number) {}

  connection(c: Connection): void {
    this.conns.push(c);
  }

  /** The load's connections that were open at some moment of [from, to] (established before `to`, not closed before `from`). */
  openDuring(from: number, to: number): number {
    return this.conns.filter((c) => this.from + c.at < to && (c.closedAt === undefined || this.from + c.closedAt >= from)).length;
  }

  event(t: number, kind: TimelineEvent['kind'], what: string): number {
    this.events.push({ t, kind, what });
    return t;
  }

  view(lb: string, t: number, servers: Map<string, ServerSample>): void {
    const v = this.views.get(lb) ?? this.views.set(lb, []).get(lb)!;
    v.push({ t, servers });
  }

  /**
   * The first moment at or after `after` when `test(state)` held for `server` on every listed LB
   * (each LB's own first such sample; the latest of them).
   */
  allSee(lbs: string[], server: string, after: number, test: (s: ServerSample | undefined) => boolean): number | null {
    let latest = -Infinity;
    for (const lb of lbs) {
      const hit = (this.views.get(lb) ?? []).find((v) => v.t >= after && test(v.servers.get(server)));
      if (!hit) return null;
      latest = Math.max(latest, hit.t);
    }
    return latest;
  }

  /** The first request sent at or after `after` (and answered) that a given node served / went through a given LB. */
  firstServed(after: number, match: (r: Request) => boolean): Request | undefined {
    return this.requests.find((r) => r.t >= after && !failed(r) && match(r));
  }

  /** The last answered request sent before `before` that matches. */
  lastServed(before: number, match: (r: Request) => boolean): Request | undefined {
    let last: Request | undefined;
    for (const r of this.requests) if (r.t < before && !failed(r) && match(r)) last = r;
    return last;
  }

  /** When the VIP appeared on `lb` at or after `after`. */
  vipOn(lb: string, after: number): number | null {
    return this.vip.find((v) => v.lb === lb && v.has && v.t >= after)?.t ?? null;
  }

  /** The LB that held the VIP at `t` (by the add/remove events; null before the first one). */
  holderAt(t: number, initial?: string): string | undefined {
    let holder = initial;
    for (const v of this.vip) {
      if (v.t > t) break;
      if (v.has) holder = v.lb;
      else if (holder === v.lb) holder = undefined;
    }
    return holder;
  }

  inWindow(from: number, to: number): Request[] {
    return this.requests.filter((r) => r.t >= from && r.t < to);
  }

  failures(from = -Infinity, to = Infinity): FailedRequest[] {
    return this.inWindow(from, to)
      .filter(failed)
      .map((r) => ({
        t: Math.round(r.t),
        ms: Math.round(r.ms),
        kind: r.kind,
        status: r.status,
        ...(r.error ? { error: r.error } : {}),
        ...(r.lb ? { lb: r.lb } : {}),
        ...(r.conn !== undefined ? { conn: r.conn } : {}),
        ...(r.connectedAt !== undefined ? { connectedAt: Math.round(r.connectedAt) } : {}),
        ...(r.dialedAt !== undefined ? { dialedAt: Math.round(r.dialedAt) } : {}),
        ...(r.resent ? { resent: true } : {}),
      }));
  }

  /** Each node's share of the answered requests sent in a window (0..1). */
  share(from: number, to: number): Record<string, number> {
    const ok = this.inWindow(from, to).filter((r) => !failed(r) && r.node);
    const out: Record<string, number> = {};
    for (const r of ok) out[r.node as string] = (out[r.node as string] ?? 0) + 1;
    for (const k of Object.keys(out)) out[k] = Math.round((out[k] / ok.length) * 1000) / 1000;
    return out;
  }
}
