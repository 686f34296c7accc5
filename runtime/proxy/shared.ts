// The balancing state every traffic worker of the proxy shares: per server the connections in use, the most seen
// and the health and admin state; per backend the round-robin position, the queue's tickets, the number of requests
// waiting and the oldest waiter of each worker. It lives in a SharedArrayBuffer (one per configuration: a reload
// makes a new one, sessions of the old configuration finish on the old one) seen by the workers, which are threads
// of one process (main.ts), and updated with Atomics only. Plus one doorbell per worker, for the whole run: a
// worker that frees a slot rings the worker whose request has waited longest (Atomics.notify, received with
// Atomics.waitAsync in that worker's event loop).
import type { ParsedConfig } from './config.ts';

/** Workers at most (HAProxy's nbthread limit here: 64). */
export const MAX_WORKERS = 64;

// per server, in Int32 slots
export const S_CUR = 0; // requests holding a slot on the server
export const S_SMAX = 1; // the most seen at once
export const S_UP = 2; // 1 up, 0 down
export const S_ADMIN = 3; // 0 ready, 1 drain, 2 maint
// 1: the control plane's count of this server's consecutive observed failures (observe layer4|layer7) is known to
// be 0, so a success need not be reported; 0 (a failure reported since, or a new configuration): the next one is
export const S_OBS_CLEAR = 4;
const S_INTS = 5;
// per backend, in Int32 slots
export const B_RR = 0; // round-robin tickets taken (and leastconn's rotation among equals)
export const B_QTAIL = 1; // queue tickets taken
export const B_WAITING = 2; // requests waiting in the queue, every worker's
export const B_QMAX = 3;
export const B_SMAX = 4; // the most requests at once on the backend's servers
export const B_HAS = 8; // [MAX_WORKERS]: 1 when that worker has a request waiting
export const B_HEAD = B_HAS + MAX_WORKERS; // [MAX_WORKERS]: the ticket of that worker's oldest waiting request
export const B_MINE = B_HEAD + MAX_WORKERS; // [MAX_WORKERS]: how many of the waiting requests are that worker's
const B_INTS = B_MINE + MAX_WORKERS;

/** Where each backend's and server's state sits in a configuration's shared buffer. */
export interface Layout {
  backends: Map<string, number>; // backend name -> Int32 offset
  servers: Map<string, number>; // "backend/server" -> Int32 offset
  since: Map<string, number>; // "backend/server" -> Float64 index (ms epoch of the last transition to UP)
  bytes: number;
}

export function layoutOf(cfg: ParsedConfig): Layout {
  const backends = new Map<string, number>();
  const servers = new Map<string, number>();
  const since = new Map<string, number>();
  let o = 0;
  let n = 0;
  for (const p of cfg.proxies) {
    if (p.kind === 'frontend') continue;
    backends.set(p.name, o);
    o += B_INTS;
    for (const s of p.servers) {
      servers.set(`${p.name}/${s.name}`, o);
      since.set(`${p.name}/${s.name}`, n++);
      o += S_INTS;
    }
  }
  const ints = o + (o % 2); // the Float64 part starts 8-aligned
  return { backends, servers, since, bytes: ints * 4 + n * 8 };
}

/** A configuration's shared state, as one worker (or the control plane) sees it. */
export class SharedState {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly layout: Layout;
  constructor(
    cfg: ParsedConfig,
    readonly sab: SharedArrayBuffer = new SharedArrayBuffer(Math.max(8, layoutOf(cfg).bytes)),
  ) {
    this.layout = layoutOf(cfg);
    const ints = this.layout.bytes - this.layout.since.size * 8;
    this.i32 = new Int32Array(sab, 0, ints / 4);
    this.f64 = new Float64Array(sab, ints, this.layout.since.size);
  }

  /** Writes a server's health and admin state (the control plane's word, seen at once by every worker). */
  setHealth(key: string, up: boolean, admin: 0 | 1 | 2, since: number): void {
    const o = this.layout.servers.get(key);
    const f = this.layout.since.get(key);
    if (o === undefined || f === undefined) return;
    this.f64[f] = since;
    Atomics.store(this.i32, o + S_ADMIN, admin);
    Atomics.store(this.i32, o + S_UP, up ? 1 : 0);
  }
}

/** A worker that ended: its requests no longer wait (they went with it), nobody waits behind them. */
export function forgetWorker(st: SharedState, slot: number): void {
  for (const o of st.layout.backends.values()) {
    const n = Atomics.exchange(st.i32, o + B_MINE + slot, 0);
    if (n) Atomics.sub(st.i32, o + B_WAITING, n);
    Atomics.store(st.i32, o + B_HAS + slot, 0);
  }
}

/** Raises a shared maximum to `v`. */
export function raiseMax(i32: Int32Array, at: number, v: number): void {
  for (;;) {
    const m = Atomics.load(i32, at);
    if (v <= m || Atomics.compareExchange(i32, at, m, v) === m) return;
  }
}

/** Ticket order that survives the wrap-around of the 32-bit counters. */
export const before = (a: number, b: number): boolean => ((a - b) | 0) < 0;

/**
 * This worker's doorbell and the others': ring(w) wakes worker w; a worker with requests waiting keeps listening
 * for its own and, when it rings, gives the freed slots to them (onRing).
 */
export class Doorbells {
  readonly bells: Int32Array;
  private armed = false;
  private seen = 0;
  private keepAlive: NodeJS.Timeout | null = null;
  onRing: () => void = () => {};
  constructor(
    readonly sab: SharedArrayBuffer,
    readonly me: number,
    readonly workers: number,
  ) {
    this.bells = new Int32Array(sab);
  }

  static create(): SharedArrayBuffer {
    return new SharedArrayBuffer(MAX_WORKERS * 4);
  }

  ring(w: number): void {
    Atomics.add(this.bells, w, 1);
    Atomics.notify(this.bells, w);
  }

  /** Listens for this worker's bell until stop(); a ring that came since the last onRing runs it again at once. */
  listen(): void {
    if (this.workers < 2) return;
    this.wanted = true;
    // a pending Atomics.waitAsync does not keep the event loop alive; a worker with waiters must stay
    this.keepAlive ??= setInterval(() => {}, 1 << 30);
    this.arm();
  }

  stop(): void {
    this.wanted = false;
    if (this.keepAlive) clearInterval(this.keepAlive);
    this.keepAlive = null;
  }

  private wanted = false;

  private arm(): void {
    if (this.armed) return;
    this.armed = true;
    const r = (
      Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<string> | string } }
    ).waitAsync(this.bells, this.me, this.seen);
    if (r.async) void (r.value as Promise<string>).then(() => this.rang());
    else queueMicrotask(() => this.rang());
  }

  private rang(): void {
    this.armed = false;
    this.seen = Atomics.load(this.bells, this.me);
    this.onRing();
    if (this.wanted) this.arm();
  }
}
