// What an LB's failure may cost, and what it may not. A request is lost to a VIP move only when it was
// in flight on the LB that lost the VIP: on a TCP connection open there (each carries one request at a
// time). When the master fails, those are the connections established before the backup held the VIP
// (until then the master was the only LB a connection could reach) that were still open at the fault;
// when the master takes the VIP back after its heal, those established before the VIP returned. Any
// other failure (a new connection refused or never answered in the takeover's gap, a request on a
// connection made afterwards) is one the cluster should not have lost.
//
// "Moved" is when the clients' traffic moved, which is not always when the VIP did: a client sends to
// the MAC its neighbour entry for the VIP holds, and that entry changes when the new holder's
// gratuitous ARP arrives. keepalived adds the VIP and then sends the ARP; a connection the load opened
// in between still went to the old holder and is cut once the ARP lands (seen: a new connection
// established 8 ms before the VIP was reported on lb01 and reset; one established just after it would
// have counted as a loss the cluster should not have had). So the moment is the later of the VIP on
// the new holder and the controller's neighbour entry pointing to it, when the controller sees it.
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

export interface Moments {
  /** When the fault's injection began. */
  fault: number;
  /** When the VIP was seen on the backup (or, if never, when the fault's injection had returned). */
  away: number;
  /** When the VIP was back on the master (null: it did not come back while recorded). */
  returned: number | null;
}

/**
 * When the clients' traffic for the VIP moved to `lb`: `vipAt` (the VIP seen on it), or the first
 * neighbour change to `lb`'s MAC at or after `after` when that came later; `vipAt` when no such change
 * was seen (the controller is not on the VIP's network), null when neither is known.
 */
export function movedTo(rec: Recording, lbByMac: Map<string, string>, lb: string, after: number, vipAt: number | null): number | null {
  const arp = rec.arps.find((a) => a.t >= after && lbByMac.get(a.mac) === lb)?.t ?? null;
  if (vipAt === null) return arp;
  return arp === null ? vipAt : Math.max(vipAt, arp);
}

export function inFlight(rec: Recording, m: Moments): InFlight {
  const lost = rec.requests.filter(failed);
  // on a connection established before the VIP moved, and failed at or after the move
  const cutBy = (r: Request, established: number, moved: number) =>
    r.connectedAt !== undefined && r.connectedAt < established && r.t + r.ms >= moved;
  const atFault = lost.filter((r) => cutBy(r, m.away, m.fault));
  const atReturn = m.returned === null ? [] : lost.filter((r) => !atFault.includes(r) && cutBy(r, m.returned!, m.returned!));
  return {
    openAtFault: rec.openDuring(m.fault, m.away),
    lostAtFault: atFault.length,
    openAtReturn: m.returned === null ? 0 : rec.openDuring(m.returned, m.returned),
    lostAtReturn: atReturn.length,
    notInFlight: lost.length - atFault.length - atReturn.length,
  };
}
