// What an LB's failure may cost, and what it may not. A request is lost to a VIP move only when it was
// in flight on the LB that lost the VIP: on a TCP connection open there (each carries one request at a
// time). When the master fails, those are the connections established before the backup held the VIP
// (until then the master was the only LB a connection could reach) that were still open at the fault;
// when the master takes the VIP back after its heal, those established before the VIP returned. Any
// other failure (a new connection refused or never answered in the takeover's gap, a request on a
// connection made afterwards) is one the cluster should not have lost.
//
// When did the traffic move? Two witnesses, neither exact. The VIP's appearance on the new holder
// reaches the controller through an SSH watcher, tens of ms late on a busy LB (a lab run: a request
// reset 19 ms before the VIP was reported back on lb01, on a connection open on lb02 for 2 s) or not
// at all. A client sends to the MAC its neighbour entry for the VIP holds, which changes when the new
// holder's gratuitous ARP arrives; keepalived sends it after adding the VIP, so a connection made in
// between still went to the old holder and is cut when the ARP lands (a lab run: a new connection
// established 8 ms before the VIP was reported on lb01, then reset). The controller runs the load and
// sees its own neighbour entry change at once: when it does, that change is when the traffic moved.
// A move is therefore a window: connections established before its end (the neighbour change, else
// the VIP seen) were on the old holder, and their requests that failed from its start (the earlier of
// the two) were lost to the move.
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
 * The clients' traffic for the VIP moving to `lb`, from the VIP seen on it (`vipAt`) and the first
 * change of the controller's neighbour entry for the VIP to `lb`'s MAC at or after `after`: `at` is that
 * change when seen (else `vipAt`), `from` the earlier of the two; null when neither was seen.
 */
export function movedTo(rec: Recording, lbByMac: Map<string, string>, lb: string, after: number, vipAt: number | null): Move | null {
  const arp = rec.arps.find((a) => a.t >= after && lbByMac.get(a.mac) === lb)?.t ?? null;
  if (arp === null) return vipAt === null ? null : { from: vipAt, at: vipAt };
  return { from: vipAt === null ? arp : Math.min(vipAt, arp), at: arp };
}

export function inFlight(rec: Recording, m: Moments): InFlight {
  const lost = rec.requests.filter(failed);
  // on a connection established before the VIP moved, and failed at or after the move
  const cutBy = (r: Request, established: number, moved: number) =>
    r.connectedAt !== undefined && r.connectedAt < established && r.t + r.ms >= moved;
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
