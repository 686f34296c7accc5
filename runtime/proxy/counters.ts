// The proxy's counters: one set per frontend, backend and server in each engine (summed over the workers by the
// statistics), per-second rates, and how a finished request or connection adds to them.

export const COUNTER_KEYS = [
  'scur',
  'smax',
  'stot',
  'bin',
  'bout',
  'dreq',
  'dresp',
  'ereq',
  'econ',
  'eresp',
  'wretr',
  'wredis',
  'lbtot',
  'h1xx',
  'h2xx',
  'h3xx',
  'h4xx',
  'h5xx',
  'hother',
  'req_tot',
  'cli_abrt',
  'srv_abrt',
  'qcur',
  'qmax',
  'lastsess',
  'qtime',
  'ctime',
  'rtime',
  'ttime',
  'conn_tot',
  'rate',
  'rate_max',
  'req_rate',
  'req_rate_max',
  'connect',
  'reuse',
  'intercepted',
  'idle',
] as const;
export type CounterKey = (typeof COUNTER_KEYS)[number];
export type Counters = Record<CounterKey, number>;

/**
 * A fresh set of counters. Built in one go: an object that gets its 40 properties one keyed store at a
 * time ends up in V8's dictionary mode, where every counter update is a hash lookup and allocates.
 */
export function newCounters(): Counters {
  return Object.fromEntries(COUNTER_KEYS.map((k) => [k, k === 'lastsess' ? -1 : 0])) as Counters;
}

/** Per-second event rate over the current and previous second (like HAProxy's freq counters). */
export class Rate {
  private sec = 0;
  private cur = 0;
  private prev = 0;
  max = 0;
  hit(now: number): void {
    const s = Math.floor(now / 1000);
    if (s !== this.sec) {
      this.prev = s === this.sec + 1 ? this.cur : 0;
      this.cur = 0;
      this.sec = s;
    }
    this.cur++;
    const r = this.read(now);
    if (r > this.max) this.max = r;
  }
  read(now: number): number {
    const s = Math.floor(now / 1000);
    if (s === this.sec) return this.cur + Math.round((this.prev * (1000 - (now % 1000))) / 1000);
    if (s === this.sec + 1) return Math.round((this.cur * (1000 - (now % 1000))) / 1000);
    return 0;
  }
}

/** HAProxy's running averages of the queue, connect, response and total times (over the last ~128 requests). */
const avg = (old: number, v: number) => (old === 0 ? v : old + (v - old) / 128);

/** Counts an HTTP status in its class. */
export function statusClass(c: Counters, status: number): void {
  if (status < 100) c.hother++;
  else if (status < 200) c.h1xx++;
  else if (status < 300) c.h2xx++;
  else if (status < 400) c.h3xx++;
  else if (status < 500) c.h4xx++;
  else if (status < 600) c.h5xx++;
  else c.hother++;
}

/**
 * A finished request's bytes and times, added to a server's or a backend's counters. tw, tc, tr: the queue,
 * connect and response times (-1 when the request did not get that far); tt: the total time.
 */
export function accountRequest(
  c: Counters,
  now: number,
  bytesIn: number,
  bytesOut: number,
  tw: number,
  tc: number,
  tr: number,
  tt: number,
): void {
  c.bin += bytesIn;
  c.bout += bytesOut;
  c.lastsess = now;
  if (tw >= 0) c.qtime = avg(c.qtime, tw);
  if (tc >= 0) c.ctime = avg(c.ctime, tc);
  if (tr >= 0) c.rtime = avg(c.rtime, tr);
  c.ttime = avg(c.ttime, tt);
}
