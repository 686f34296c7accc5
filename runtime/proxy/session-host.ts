// What a session (http-session.ts, tcp-session.ts) sees of the data plane that runs it (dataplane.ts): the few
// things it uses, so that the sessions do not depend on the data plane that creates them.
import type { Backend, Server } from './balance.ts';
import type { Frontend } from './frontend.ts';
import type { Logger } from './log.ts';
import type { ServerConn } from './serverconn.ts';
import type { LocalResponse, StatsKind } from './types.ts';

/** A client connection's session, as the data plane sees it. */
export interface Session {
  readonly fe: Frontend;
  /** Ends the session after its request in flight (a stop or a reload). */
  stopWhenIdle(): void;
  /** Ends the session now. */
  abort(): void;
}

export interface SessionHost {
  /** connections running in this data plane (the logs' actconn) */
  readonly actconn: number;
  readonly logger: Logger;
  /** The backend of that name in the configuration in force. */
  backend(name: string): Backend | undefined;
  /** A stats page (or CSV, or Prometheus text) from the control plane. */
  render(kind: StatsKind, proxy: string, uri: string): Promise<LocalResponse>;
  /** A pooled idle connection to `s`, or null. */
  takeIdle(s: Server): ServerConn | null;
  /** A server connection done with its request: to `s`'s idle pool, or closed. */
  giveIdle(c: ServerConn, s: Server): void;
  /** The outcome of a connection or a response, for `observe layer4|layer7`. */
  observe(s: Server, ok: boolean, layer: 'layer4' | 'layer7'): void;
  sessionEnded(s: Session): void;
}
