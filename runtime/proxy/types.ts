// The types the proxy's runtime files share (HAProxy keeps its own in include/haproxy/*-t.h): what the control
// plane and the data planes tell each other, the answers the proxy makes itself, and a request's timeouts.
import type { effectiveTimeouts } from './config.ts';
import type { Counters } from './counters.ts';

export type AdminState = 'ready' | 'drain' | 'maint';

/** What the control plane tells every data plane about one server ("backend/server"). */
export interface HealthUpdate {
  key: string;
  up: boolean;
  admin: AdminState;
  since: number; // ms epoch of the last transition to UP (slowstart), 0 = at start
}

/** An answer the proxy makes itself (stats, monitor-uri, redirects). */
export interface LocalResponse {
  status: number;
  headers: [string, string][];
  body: Buffer;
}

export type StatsKind = 'html' | 'csv' | 'prom';

/** Calls from a data plane to the control plane. */
export interface ControlLink {
  observe(key: string, ok: boolean, layer: 'layer4' | 'layer7'): void;
  render(kind: StatsKind, proxy: string, uri: string): Promise<LocalResponse>;
  /** A listening socket's handle for host:port made elsewhere (a worker's own SO_REUSEPORT socket); absent: bind here. */
  openListener?(host: string, port: number, backlog: number): Promise<object>;
}

/** Where a data plane is among the traffic workers, and the state they share (one worker: its own). */
export interface Sharing {
  /** this configuration's shared buffer (shared.ts), the same for every worker */
  sab?: SharedArrayBuffer;
  /** the doorbells of all workers, and this worker's number */
  bells: SharedArrayBuffer;
  worker: number;
  workers: number;
}

/** The counters of a data plane's proxies and servers, for the statistics. */
export interface Snapshot {
  actconn: number;
  pid: number;
  proxies: Record<string, { fe?: Counters; be?: Counters; servers: Record<string, Counters> }>;
}

/** The timeouts a request or connection runs under (its frontend's and its backend's). */
export type Timeouts = ReturnType<typeof effectiveTimeouts>;
