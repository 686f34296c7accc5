// The capacity scenario's load: requests sent at a constant arrival rate (open loop: each leaves when
// it is due, whether or not the earlier ones have answered), over keep-alive connections opened as
// needed, each recorded with the moment it was due, when it ended and how (an answer's status, or
// why there was none). Latency is counted from the due moment, so a request that had to wait for a
// free connection on this side is not flattered (no coordinated omission). A request that failed
// before any of it was written (the idle connection it was given had been reset) is sent again once,
// as HTTP clients do; its latency still counts from its due moment. Compact records only: a
// flood of several thousand requests a second costs the controller little.
import { randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Pool } from 'undici';
import { neverSent } from './load.ts';

/** How a request ended: an answer (its status class), or no answer. */
export type Outcome = 'ok' | 'reset' | 'timeout' | '502' | '503' | '504' | 'other';

export interface Shot {
  /** When it was due, on the caller's clock (ms). */
  due: number;
  /** When undici was handed it (ms; later than `due` only when this side was late). */
  sent: number;
  /** When its whole answer was read, or it failed (ms). */
  end: number;
  status: number;
  outcome: Outcome;
  /** The web node that answered (X-Served-By), when it said. */
  node?: string;
}

export interface OpenLoopOptions {
  url: string;
  connect?: { ca?: string; servername?: string };
  /** The rate (requests per second) at `t` ms from the start: the schedule of the whole run. */
  rateAt(t: number): number;
  durationMs: number;
  /** A request without its whole answer after this long counts as a timeout. */
  timeoutMs: number;
  /** Connections at most (requests beyond wait on this side, their latency still counted from their due time). */
  maxConnections: number;
  /** The caller's clock (ms). */
  now(): number;
  /** Stops sending at once; requests in flight still finish or time out. */
  signal?: AbortSignal;
}

export function outcomeOf(status: number, error?: unknown): Outcome {
  if (error !== undefined) {
    const e = error as { code?: string; name?: string };
    const code = e.code ?? e.name ?? '';
    if (/TIMEOUT/i.test(code) || e.name === 'HeadersTimeoutError' || e.name === 'BodyTimeoutError') return 'timeout';
    if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_CLOSED') return 'reset';
    return 'other';
  }
  if (status === 502) return '502';
  if (status === 503) return '503';
  if (status === 504) return '504';
  if (status >= 500 || status === 0) return 'other';
  return 'ok';
}

/** Runs the schedule; resolves with every request once the last one has ended. */
export async function openLoop(o: OpenLoopOptions): Promise<Shot[]> {
  const url = new URL(o.url);
  const pool = new Pool(url.origin, {
    connections: o.maxConnections,
    pipelining: 1,
    keepAliveTimeout: 10_000,
    headersTimeout: o.timeoutMs,
    bodyTimeout: o.timeoutMs,
    connectTimeout: o.timeoutMs,
    ...(o.connect ? { connect: o.connect } : {}),
  });
  const path = url.pathname + url.search;
  const shots: Shot[] = [];
  const inflight = new Set<Promise<void>>();
  const start = o.now();
  // which requests were written: a request undici failed before writing any of it is sent again (neverSent)
  const tag = randomBytes(6).toString('hex');
  const idHeader = new RegExp(`\\r\\nx-hasetup-request: ${tag}-(\\d+)\\r\\n`, 'i');
  const written = new Set<number>();
  const onHeaders = (m: unknown) => {
    const { headers } = m as { headers?: string };
    const id = typeof headers === 'string' ? idHeader.exec(headers) : null;
    if (id) written.add(Number(id[1]));
  };
  subscribe('undici:client:sendHeaders', onHeaders);
  let ids = 0;

  const one = (due: number): Promise<void> => {
    const sent = o.now();
    const id = ++ids;
    const headers = { 'user-agent': 'hasetup-failover-test', 'x-hasetup-request': `${tag}-${id}` };
    // the timeout runs from the due moment: a request this side was late to send has less time left
    const signal = AbortSignal.timeout(Math.max(1, Math.round(o.timeoutMs - (sent - due))));
    const ask = () =>
      pool.request({ path, method: 'GET', headers, signal }).then(async (res) => {
        await res.body.dump({ limit: 1 << 20 });
        const by = res.headers['x-served-by'];
        return { status: res.statusCode, node: Array.isArray(by) ? by[0] : by, error: undefined as unknown };
      });
    return ask()
      .catch((error: unknown) => (neverSent(error, written.has(id)) ? ask() : Promise.reject(error)))
      .finally(() => written.delete(id))
      .catch((error: unknown) => ({
        status: 0,
        node: undefined,
        error: (error as { name?: string }).name === 'TimeoutError' ? { code: 'TIMEOUT' } : (error ?? 'error'),
      }))
      .then((r) => {
        const s: Shot = { due, sent, end: o.now(), status: r.status, outcome: outcomeOf(r.status, r.error) };
        if (r.node) s.node = r.node;
        shots.push(s);
      });
  };

  // the n-th request is due when the integral of the rate reaches n
  let owed = 0;
  let last = 0;
  await new Promise<void>((done) => {
    const tick = () => {
      const t = o.now() - start;
      const until = Math.min(t, o.durationMs);
      // advance in 1 ms slices so that each request gets its own due moment
      while (last < until) {
        const step = Math.min(1, until - last);
        owed += (o.rateAt(last) * step) / 1000;
        last += step;
        while (owed >= 1) {
          owed -= 1;
          const p = one(start + last);
          inflight.add(p);
          void p.finally(() => inflight.delete(p));
        }
      }
      if (t >= o.durationMs || o.signal?.aborted) return done();
      setTimeout(tick, 2);
    };
    tick();
  });
  await Promise.all(inflight);
  await pool.close().catch(() => {});
  unsubscribe('undici:client:sendHeaders', onHeaders);
  return shots.sort((a, b) => a.due - b.due);
}
