// A bounded HTTP(S) load at a steady rate (open loop: requests leave on schedule whether or not the
// earlier ones have answered), over keep-alive connections and new ones both, every request
// recorded: when it left, how long it took, its status, the web node that served it and the LB it
// came through (Apache's X-Served-By and X-Served-Via headers), and the TCP connection it went out
// on (when that connection was established: a failure on a connection opened before a fault is a
// request in flight on the host that failed, any other one is a request the fault should not have
// cost). undici does the HTTP; its diagnostics channels tell which socket carried which request.
import { randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { buildConnector, Pool } from 'undici';

export type ConnKind = 'keepalive' | 'new';

export interface Sample {
  /** When the request left, in ms since the load started. */
  t: number;
  /** Until the whole answer was read, or until it failed (ms). */
  ms: number;
  kind: ConnKind;
  /** 0 when there was no answer. */
  status: number;
  /** The web node that answered (X-Served-By). */
  node?: string;
  /** The address the web node saw the request come from: the LB it went through (X-Served-Via). */
  via?: string;
  /** Why there was no answer: ECONNRESET, ECONNREFUSED, timeout... */
  error?: string;
  /** The TCP connection the request was written on (absent: it never had one, e.g. refused). */
  conn?: number;
  /** When that connection's handshake began, in ms since the load started. */
  dialedAt?: number;
  /** When that connection was established, in ms since the load started. */
  connectedAt?: number;
  /** What LoadOptions.mark read in the answer's body. */
  mark?: string;
  /** Sent a second time: the first try was never written (see neverSent). */
  resent?: boolean;
}

/** A TCP connection of the load: when it was established and closed (ms since the load started). */
export interface Connection {
  id: number;
  /** When its handshake began. */
  dialedAt: number;
  at: number;
  closedAt?: number;
}

export interface LoadOptions {
  url: string;
  /** TLS options of the connections for an https URL (a CA to trust, the name to verify). */
  connect?: { ca?: string; servername?: string };
  /** Requests per second, all kinds together. */
  rate: number;
  durationMs: number;
  /** Never more than this many requests (default: rate x duration). */
  maxRequests?: number;
  /** A request without its whole answer after this long counts as failed (default 10 s). */
  timeoutMs?: number;
  /** Which connections, taken in turn (default both). */
  kinds?: ConnKind[];
  /** Keep-alive connections in the pool (default 8). */
  connections?: number;
  /** Stops sending at once; requests in flight still finish (or time out). */
  signal?: AbortSignal;
  onSample?(s: Sample): void;
  /** Each connection once established (the same object gets its closedAt when it closes). */
  onConnection?(c: Connection): void;
  /** The rate at a given time (ms since start), for ramps; default: `rate` throughout. */
  rateAt?(t: number): number;
  /** Reads something of each answer's body into its sample (e.g. which release of a site wrote it). */
  mark?(body: string): string | undefined;
}

/** True when a request failed: no answer, or a 5xx. */
export const failed = (s: Sample): boolean => s.status === 0 || s.status >= 500;

const errorName = (e: unknown): string => {
  const err = e as { code?: string; name?: string; message?: string };
  if (
    err.name === 'HeadersTimeoutError' ||
    err.name === 'BodyTimeoutError' ||
    err.code === 'UND_ERR_HEADERS_TIMEOUT' ||
    err.code === 'UND_ERR_BODY_TIMEOUT'
  )
    return 'timeout';
  if (err.code === 'UND_ERR_SOCKET') return 'ECONNRESET';
  return err.code ?? err.name ?? String(err.message ?? e);
};

/**
 * True when a request failed before any of it was written (`written`: its headers went out on a
 * connection), because the idle keep-alive connection it was given had been reset or closed by the
 * other side. undici checks an idle connection for a pending reset before it writes to it and then
 * fails the request waiting for it; no server saw that request, and HTTP clients (browsers among them)
 * send it again on a new connection, as the load does, once (RFC 9112, 9.3.1). Seen in the lab when
 * the VIP came back to its master: a request given a connection still open on the backup failed in
 * 19 ms with ECONNRESET and no connection of its own.
 */
export function neverSent(e: unknown, written: boolean): boolean {
  if (written) return false;
  const code = (e as { code?: string }).code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET';
}

export async function runLoad(o: LoadOptions): Promise<Sample[]> {
  const url = new URL(o.url);
  const kinds = o.kinds ?? ['keepalive', 'new'];
  const timeoutMs = o.timeoutMs ?? 10_000;
  const max = o.maxRequests ?? Math.ceil((o.rate * o.durationMs) / 1000);
  // each connection as it is made: when its handshake began (a connection whose SYN left before the
  // VIP moved went to the old holder, even when it was established after) and when it was established
  const start = performance.now();
  const dial = buildConnector({ ...(o.connect ?? {}), timeout: timeoutMs });
  const sockets = new WeakMap<object, Connection>();
  let nextConn = 0;
  const connect: buildConnector.connector = (params, done) => {
    const dialedAt = performance.now() - start;
    dial(params, (err, socket) => {
      if (socket && !sockets.has(socket)) {
        const c: Connection = { id: ++nextConn, dialedAt, at: performance.now() - start };
        sockets.set(socket, c);
        socket.once('close', () => (c.closedAt = performance.now() - start));
        o.onConnection?.(c);
      }
      // the connector's callback takes an error or a socket
      if (err) done(err, null);
      else done(null, socket!);
    });
  };
  const opts = { headersTimeout: timeoutMs, bodyTimeout: timeoutMs, connect };
  const pools: Record<ConnKind, Pool> = {
    keepalive: new Pool(url.origin, { ...opts, connections: o.connections ?? 8, keepAliveTimeout: 4_000 }),
    // one request per connection: a new TCP connection (and a new proxy session) each time
    new: new Pool(url.origin, { ...opts, connections: 64, maxRequestsPerClient: 1, pipelining: 0 }),
  };
  const samples: Sample[] = [];
  const inflight = new Set<Promise<void>>();
  const path = url.pathname + url.search;

  // which connection carried which request: the id header of each request written, on its socket
  const tag = randomBytes(6).toString('hex');
  const idHeader = new RegExp(`\\r\\nx-hasetup-request: ${tag}-(\\d+)\\r\\n`, 'i');
  const carried = new Map<number, Connection>();
  const onHeaders = (m: unknown) => {
    const { headers, socket } = m as { headers?: string; socket?: object };
    const id = typeof headers === 'string' ? idHeader.exec(headers) : null;
    const c = id && socket ? sockets.get(socket) : undefined;
    if (id && c) carried.set(Number(id[1]), c);
  };
  subscribe('undici:client:sendHeaders', onHeaders);

  type Answer = { status: number; node?: string; via?: string; error?: string; mark?: string; resent?: boolean };
  const ask = (kind: ConnKind, id: number): Promise<Answer> =>
    pools[kind]
      .request({ path, method: 'GET', headers: { 'user-agent': 'hasetup-failover-test', 'x-hasetup-request': `${tag}-${id}` } })
      .then(async (res) => {
        const body = await res.body.text();
        const one = (h: string | string[] | undefined) => (Array.isArray(h) ? h[0] : h);
        return {
          status: res.statusCode,
          node: one(res.headers['x-served-by']),
          via: one(res.headers['x-served-via']),
          mark: o.mark?.(body),
        };
      });

  let ids = 0;
  const one = (kind: ConnKind): Promise<void> => {
    const t = performance.now() - start;
    const id = ++ids;
    return (
      ask(kind, id)
        .catch((e: unknown) =>
          // never written: sent again once, on another connection
          neverSent(e, carried.has(id)) ? ask(kind, id).then((a): Answer => ({ ...a, resent: true })) : Promise.reject(e),
        )
        // no answer, or an answer cut short
        .catch((e: unknown): Answer => ({ status: 0, node: undefined, error: errorName(e) }))
        .then((r) => {
          const s: Sample = { t, ms: performance.now() - start - t, kind, status: r.status };
          if (r.mark !== undefined) s.mark = r.mark;
          if (r.node) s.node = r.node;
          if (r.via) s.via = r.via;
          if (r.error) s.error = r.error;
          if (r.resent) s.resent = true;
          const c = carried.get(id);
          carried.delete(id);
          if (c) {
            s.conn = c.id;
            s.dialedAt = c.dialedAt;
            s.connectedAt = c.at;
          }
          samples.push(s);
          o.onSample?.(s);
        })
    );
  };

  let sent = 0;
  let due = 0;
  let last = 0;
  await new Promise<void>((done) => {
    const tick = () => {
      const now = performance.now() - start;
      if (now >= o.durationMs || sent >= max || o.signal?.aborted) return done();
      due += ((o.rateAt?.(now) ?? o.rate) * (now - last)) / 1000;
      last = now;
      while (due >= 1 && sent < max) {
        due -= 1;
        const p = one(kinds[sent % kinds.length]);
        sent++;
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
      setTimeout(tick, 5);
    };
    tick();
  });
  await Promise.all(inflight);
  await Promise.all(Object.values(pools).map((p) => p.close().catch(() => {})));
  unsubscribe('undici:client:sendHeaders', onHeaders);
  return samples.sort((a, b) => a.t - b.t);
}
