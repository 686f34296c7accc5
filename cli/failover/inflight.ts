// What an LB's failure may cost, and what it may not. A request is lost to a VIP move only when it was
// in flight on the LB that lost the VIP: on a TCP connection open there (each carries one request at a
// time). When the master fails, those are the connections established before the backup held the VIP
// (until then the master was the only LB a connection could reach) that were still open at the fault;
// when the master takes the VIP back after its heal, those established before the VIP returned. Any
// other failure (a new connection refused or never answered in the takeover's gap, a request on a
// connection made afterwards) is one the cluster should not have lost.
//
// When did the traffic move? No witness is exact, so a move is a window from its first sign to its
// last. The VIP's appearance on the new holder reaches the controller through an SSH watcher, tens of
// ms late on a busy LB, or not at all. A client sends to the MAC its neighbour entry for the VIP
// holds; it changes when the new holder's gratuitous ARP arrives, after the VIP was added, and the
// kernel ignores an ARP that comes within a second of the entry's last update (neigh locktime), so
// it may change later still; until then the old holder, which forwards what it no longer owns, can
// pass requests to the new one. Lab runs under load showed each: a request reset 19 ms before the
// VIP was reported back; a new connection established 8 ms before it, then reset; the first request
// served through the master 240 ms before the controller's entry changed. The window starts at the
// first of: the VIP seen, the entry changed, a request answered through the new holder; it ends at the
// last of the VIP seen and the entry changed. A connection whose handshake began before the window's
// end went to the old holder; its requests that failed from the window's start were lost to the move.
import { failed } from './load.ts';
import type { Recording, Request } from './record.ts';

export interface InFlight {
  /** Connections of the load open at the fault and established before the VIP left the master (all of them on the master). */
  openAtFault: number;
  /** Failed requests that were on those connections. */
  lostAtFault: number;
  /** Connections of the load open when the VIP came back to the master. */
  openAtReturn: number;
  /** Failed requests, at or after the return, on connections open when the VIP came back. */
  lostAtReturn: number;
  /** Every other failed request. */
  notInFlight: number;
}

/** A move of the clients' traffic for the VIP: from its first witness to its last. */
export interface Move {
  /** The earliest sign that the traffic moved (failures from here on count against the move). */
  from: number;
  /** When it had moved for the clients (connections established before were on the old holder). */
  at: number;
}

export interface Moments {
  /** When the fault's injection began. */
  fault: number;
  /** When the traffic had left the master (or, if never seen, when the fault's injection had returned). */
  away: number;
  /** The traffic's move back to the master (null: it did not come back while recorded). */
  returned: Move | null;
}

/**
 * The clients' traffic for the VIP moving to `lb` at or after `after`: its signs are the VIP seen on
 * `lb` (`vipAt`), the first change of the controller's neighbour entry for the VIP to `lb`'s MAC, and the
 * first request answered through `lb`; null when neither the VIP nor the entry was seen.
 */
export function movedTo(rec: Recording, lbByMac: Map<string, string>, lb: string, after: number, vipAt: number | null): Move | null {
  const arp = rec.arps.find((a) => a.t >= after && lbByMac.get(a.mac) === lb)?.t ?? null;
  const seen = [vipAt, arp].filter((x): x is number => x !== null);
  if (seen.length === 0) return null;
  const served = rec.firstServed(after, (r) => r.lb === lb)?.t;
  return { from: Math.min(...seen, ...(served === undefined ? [] : [served])), at: Math.max(...seen) };
}

export function inFlight(rec: Recording, m: Moments): InFlight {
  const lost = rec.requests.filter(failed);
  // on a connection established before the VIP moved, and failed at or after the move
  const cutBy = (r: Request, established: number, moved: number) => {
    const dialed = r.dialedAt ?? r.connectedAt;
    return dialed !== undefined && dialed < established && r.t + r.ms >= moved;
  };
  const atFault = lost.filter((r) => cutBy(r, m.away, m.fault));
  const back = m.returned;
  const atReturn = back === null ? [] : lost.filter((r) => !atFault.includes(r) && cutBy(r, back.at, back.from));
  return {
    openAtFault: rec.openDuring(m.fault, m.away),
    lostAtFault: atFault.length,
    openAtReturn: back === null ? 0 : rec.openDuring(back.from, back.at),
    lostAtReturn: atReturn.length,
    notInFlight: lost.length - atFault.length - atReturn.length,
  };
}
