// The message heads the proxy sends: a request head for the server and a response head for the client, each the
// peer's bytes as they came with our headers added when they can go as they are, or rebuilt without the
// hop-by-hop headers; and the heads of the answers the proxy makes itself.
import type { ProxyConfig, StatsConfig } from './config.ts';
import { headerValue, type Header, type RequestHead, type ResponseHead } from './http.ts';
import { inNet } from './acl.ts';
import type { LocalResponse } from './types.ts';

export const CRLF = '\r\n';

const hopByHop = (x: Header) => x.lname === 'connection' || x.lname === 'proxy-connection' || x.lname === 'keep-alive';

/**
 * The head `raw` (ending in its blank line) with `extra` (our header lines and the blank line) in place of that
 * blank line: one buffer, one write.
 */
export function withExtra(raw: Buffer, end: number, extra: string): Buffer {
  const out = Buffer.allocUnsafe(end - 2 + extra.length);
  raw.copy(out, 0, 0, end - 2);
  out.write(extra, end - 2, 'latin1');
  return out;
}

/** A request head rebuilt without its hop-by-hop headers, then `extra`. */
export function rebuiltRequest(req: RequestHead, extra: string): Buffer {
  let h = `${req.method} ${req.uri} HTTP/1.${req.version === 11 ? 1 : 0}${CRLF}`;
  for (const x of req.headers) if (!hopByHop(x)) h += `${x.name}: ${x.value}${CRLF}`;
  return Buffer.from(h + extra, 'latin1');
}

/** A response head rebuilt without its hop-by-hop headers, then `extra`. */
export function rebuiltResponse(rsp: ResponseHead, extra: string): Buffer {
  let h = `HTTP/1.${rsp.version === 11 ? 1 : 0} ${rsp.status}${rsp.reason ? ' ' + rsp.reason : ''}${CRLF}`;
  for (const x of rsp.headers) if (!hopByHop(x)) h += `${x.name}: ${x.value}${CRLF}`;
  return Buffer.from(h + extra, 'latin1');
}

/** The connection header (and blank line) that ends a head sent to a client (or, `name` Connection, to a server). */
export function connectionTail(keep: boolean, version: 10 | 11, name = 'connection'): string {
  if (!keep) return `${name}: close${CRLF}${CRLF}`;
  return version === 10 ? `${name}: keep-alive${CRLF}${CRLF}` : CRLF;
}

/**
 * The request head for the server: the client's bytes (`raw`, the head as it came) when they can go as they are,
 * else rebuilt, with our headers (forwardfor, the connection header); and whether the server connection is kept
 * for another request after this one.
 */
export function requestHeadFor(
  req: RequestHead,
  raw: Buffer | null,
  headersChanged: boolean,
  fe: ProxyConfig,
  be: ProxyConfig,
  src: string,
): { head: Buffer; keepServer: boolean } {
  const mode =
    fe.connMode === 'close' || be.connMode === 'close'
      ? 'close'
      : fe.connMode === 'server-close' || be.connMode === 'server-close'
        ? 'server-close'
        : 'keep-alive';
  let keepServer = mode === 'keep-alive';
  let extra = '';
  const ff = fe.forwardfor ?? be.forwardfor;
  if (ff && !(ff.except && inNet(src, ff.except)) && !(ff.ifnone && req.headers.some((x) => x.lname === ff.header.toLowerCase())))
    extra += `${ff.header}: ${src}${CRLF}`;
  if (req.upgrade) {
    extra += `Connection: upgrade${CRLF}${CRLF}`;
    keepServer = false;
  } else extra += connectionTail(keepServer, req.version, 'Connection');
  const head = raw && !req.hopByHop && !headersChanged ? withExtra(raw, raw.length, extra) : rebuiltRequest(req, extra);
  return { head, keepServer };
}

const REASONS: Record<number, string> = {
  200: 'OK',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  401: 'Unauthorized',
  500: 'Internal Server Error',
};

/** The bytes of an answer the proxy makes itself (stats, monitor-uri); a HEAD request gets the head only. */
export function localAnswer(r: LocalResponse, req: RequestHead, keepClient: boolean): Buffer {
  let h = `HTTP/1.1 ${r.status} ${REASONS[r.status] ?? ''}${CRLF}`;
  for (const [k, v] of r.headers) h += `${k}: ${v}${CRLF}`;
  h += `content-length: ${r.body.length}${CRLF}cache-control: no-cache${CRLF}` + connectionTail(keepClient, req.version);
  const head = Buffer.from(h, 'latin1');
  return req.method === 'HEAD' || r.body.length === 0 ? head : Buffer.concat([head, r.body]);
}

/** Whether a request carries one of the stats page's `stats auth` credentials (HTTP Basic). */
export function statsAuthorized(st: StatsConfig, req: RequestHead): boolean {
  if (st.auth.length === 0) return true;
  const a = headerValue(req.headers, 'authorization');
  const m = a ? /^Basic\s+(\S+)$/i.exec(a) : null;
  const cred = m ? Buffer.from(m[1], 'base64').toString('utf8') : '';
  return st.auth.some((u) => `${u.user}:${u.pass}` === cred);
}

/** The answer to a stats request without valid credentials. */
export function statsUnauthorized(st: StatsConfig): LocalResponse {
  return {
    status: 401,
    headers: [
      ['content-type', 'text/html'],
      ['www-authenticate', `Basic realm="${st.realm.replace(/"/g, '')}"`],
    ],
    body: Buffer.from('<html><body><h1>401 Unauthorized</h1>\nThis page needs a user name and a password.\n</body></html>\n'),
  };
}
