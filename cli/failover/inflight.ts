// What an LB's failure may cost, and what it may not. A request is lost to a VIP move only when it was
// in flight on the LB that lost the VIP: on a TCP connection open there (each carries one request at a
// time). When the master fails, those are the connections established before the backup held the VIP
// (until then the master was the only LB a connection could reach) that were still open at the fault;
// when the master takes the VIP back after its heal, those established before the VIP returned. Any
// other failure (a new connection refused or never answered in the takeover's gap, a request on a
// connection made afterwards) is one the cluster should not have lost.
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
