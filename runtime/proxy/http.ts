// A small, strict HTTP/1.x message head parser and a chunked-body tracker, on raw bytes.
// Strict on purpose: anything that two parsers could read differently (request smuggling) is refused.

export const MAX_HEAD = 16384; // bytes, like HAProxy's default tune.bufsize for the headers

export class HttpError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Header {
  name: string;
  lname: string;
  value: string;
}

export interface RequestHead {
  method: string;
  uri: string;
  path: string;
  version: 10 | 11;
  headers: Header[];
  contentLength: number; // -1 when absent
  chunked: boolean;
  keepAlive: boolean; // what the client asked for
  upgrade: boolean; // Connection: upgrade with an Upgrade header
  headBytes: number;
  hopByHop: boolean; // has Connection, Keep-Alive or Proxy-Connection headers (the head must be rewritten)
}

export interface ResponseHead {
  version: 10 | 11;
  status: number;
  reason: string;
  headers: Header[];
  contentLength: number;
  chunked: boolean;
  keepAlive: boolean;
  headBytes: number;
  hopByHop: boolean;
}

function hasHopByHop(headers: Header[]): boolean {
  for (const h of headers) if (h.lname === 'connection' || h.lname === 'keep-alive' || h.lname === 'proxy-connection') return true;
  return false;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Request target: visible ASCII only (no space, no control, no DEL, no byte >= 0x80).
const URI = /^[\x21-\x7e]+$/;
function badValue(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if ((c < 32 && c !== 9) || c === 127) return true;
  }
  return false;
}

/** Index just past the end of the head (blank line) in buf, or -1 when not complete yet. */
const HEAD_END = Buffer.from('\r\n\r\n');

export function findHeadEnd(buf: Buffer): number {
  const i = buf.indexOf(HEAD_END);
  if (i >= 0) return i + 4;
  return -1;
}

function splitLines(text: string): string[] {
  // Lines end with CRLF; a bare CR or LF inside the head is an error.
  const lines = text.split('\r\n');
  for (const l of lines) if (l.includes('\r') || l.includes('\n')) throw new HttpError(400, 'bare CR or LF in the header');
  return lines;
}

function parseHeaders(lines: string[], from: number): Header[] {
  const headers: Header[] = [];
  for (let i = from; i < lines.length; i++) {
    const l = lines[i];
    if (l === '') continue;
    if (l[0] === ' ' || l[0] === '\t') throw new HttpError(400, 'obsolete header folding');
    const c = l.indexOf(':');
    if (c <= 0) throw new HttpError(400, 'header line without a name');
    const name = l.slice(0, c);
    if (!TOKEN.test(name)) throw new HttpError(400, 'invalid header name');
    const value = l.slice(c + 1).trim();
    if (badValue(value)) throw new HttpError(400, 'control character in a header value');
    headers.push({ name, lname: name.toLowerCase(), value });
  }
  return headers;
}

function tokensOf(headers: Header[], lname: string): string[] {
  const out: string[] = [];
  for (const h of headers) if (h.lname === lname) for (const t of h.value.split(',')) {
    const v = t.trim().toLowerCase();
    if (v) out.push(v);
  }
  return out;
}

/** Content-Length and Transfer-Encoding of a message; throws on anything ambiguous. */
function framing(headers: Header[], version: 10 | 11, isRequest: boolean): { contentLength: number; chunked: boolean } {
  let cl = -1;
  let te: string[] | null = null;
  for (const h of headers) {
    if (h.lname === 'content-length') {
      for (const part of h.value.split(',')) {
        const v = part.trim();
        if (!/^\d{1,15}$/.test(v)) throw new HttpError(400, 'invalid Content-Length');
        const n = Number(v);
        if (cl >= 0 && cl !== n) throw new HttpError(400, 'conflicting Content-Length headers');
        cl = n;
      }
    } else if (h.lname === 'transfer-encoding') {
      te = (te ?? ([] as string[])).concat(h.value.split(',').map((s) => s.trim().toLowerCase()));
    }
  }
  if (te) {
    if (cl >= 0 && isRequest) throw new HttpError(400, 'both Content-Length and Transfer-Encoding');
    if (isRequest && version === 10) throw new HttpError(400, 'Transfer-Encoding in an HTTP/1.0 request');
    const codings = te.filter((x) => x);
    if (codings.length === 0) throw new HttpError(400, 'empty Transfer-Encoding');
    if (codings[codings.length - 1] !== 'chunked' || codings.indexOf('chunked') !== codings.length - 1) {
      if (isRequest) throw new HttpError(400, 'Transfer-Encoding does not end with a single chunked');
      return { contentLength: -1, chunked: false }; // response body delimited by the close
    }
    for (const c of codings) if (!TOKEN.test(c)) throw new HttpError(400, 'invalid Transfer-Encoding');
    return { contentLength: -1, chunked: true };
  }
  return { contentLength: cl, chunked: false };
}

/** Parses a complete request head (buf[0..end) where end comes from findHeadEnd). */
export function parseRequestHead(buf: Buffer, end: number): RequestHead {
  const text = buf.toString('latin1', 0, end - 4);
  const lines = splitLines(text);
  const rl = lines[0];
  const sp1 = rl.indexOf(' ');
  const sp2 = rl.lastIndexOf(' ');
  if (sp1 <= 0 || sp2 === sp1) throw new HttpError(400, 'invalid request line');
  const method = rl.slice(0, sp1);
  const uri = rl.slice(sp1 + 1, sp2);
  const ver = rl.slice(sp2 + 1);
  if (!TOKEN.test(method)) throw new HttpError(400, 'invalid method');
  if (!URI.test(uri)) throw new HttpError(400, 'invalid request target');
  let version: 10 | 11;
  if (ver === 'HTTP/1.1') version = 11;
  else if (ver === 'HTTP/1.0') version = 10;
  else if (/^HTTP\/\d\.\d$/.test(ver)) throw new HttpError(505, 'unsupported HTTP version');
  else throw new HttpError(400, 'invalid HTTP version');
  if (method === 'CONNECT') throw new HttpError(405, 'CONNECT is not supported');
  const headers = parseHeaders(lines, 1);
  const { contentLength, chunked } = framing(headers, version, true);
  const conn = tokensOf(headers, 'connection');
  const keepAlive = version === 11 ? !conn.includes('close') : conn.includes('keep-alive');
  let hosts = 0;
  for (const h of headers) if (h.lname === 'host') hosts++;
  if (hosts > 1) throw new HttpError(400, 'several Host headers');
  if (version === 11 && hosts === 0) throw new HttpError(400, 'HTTP/1.1 request without Host');
  const upgrade = conn.includes('upgrade') && headers.some((h) => h.lname === 'upgrade');
  let path = uri;
  if (uri[0] !== '/' && uri !== '*') {
    const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*(.*)$/.exec(uri);
    if (!m) throw new HttpError(400, 'invalid request target');
    path = m[1] || '/';
  }
  return { method, uri, path, version, headers, contentLength, chunked, keepAlive, upgrade, headBytes: end, hopByHop: hasHopByHop(headers) };
}

/** Parses a complete response head. */
export function parseResponseHead(buf: Buffer, end: number): ResponseHead {
  const text = buf.toString('latin1', 0, end - 4);
  const lines = splitLines(text);
  const m = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!m) throw new HttpError(502, 'invalid status line');
  const version = m[1] === '1' ? 11 : 10;
  const status = Number(m[2]);
  if (status < 100) throw new HttpError(502, 'invalid status code');
  const headers = parseHeaders(lines, 1);
  const { contentLength, chunked } = framing(headers, version, false);
  const conn = tokensOf(headers, 'connection');
  const keepAlive = version === 11 ? !conn.includes('close') : conn.includes('keep-alive');
  return { version, status, reason: m[3] ?? '', headers, contentLength, chunked, keepAlive, headBytes: end, hopByHop: hasHopByHop(headers) };
}

export function headerValue(headers: Header[], lname: string): string | undefined {
  for (const h of headers) if (h.lname === lname) return h.value;
  return undefined;
}

const enum CS {
  Size,
  SizeDigits,
  Ext,
  SizeLF,
  Data,
  DataCR,
  DataLF,
  TrailerStart,
  TrailerLine,
  TrailerLF,
  LastLF,
  Done,
}

/**
 * Follows a chunked body byte by byte without changing it, to find where the message ends.
 * feed() returns how many bytes of the chunk belong to the body (the rest is the next message),
 * or throws HttpError(400) on malformed framing.
 */
export class ChunkedTracker {
  private st = CS.Size;
  private size = 0;
  private digits = 0;
  private remaining = 0;
  private trailerLen = 0;
  done = false;

  feed(b: Buffer, start = 0): number {
    let i = start;
    const n = b.length;
    while (i < n) {
      switch (this.st) {
        case CS.Size:
        case CS.SizeDigits: {
          const c = b[i];
          const v = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
          if (v >= 0) {
            if (++this.digits > 15) throw new HttpError(400, 'chunk size too large');
            this.size = this.size * 16 + v;
            this.st = CS.SizeDigits;
          } else if (this.st === CS.SizeDigits && c === 59 /* ; */) this.st = CS.Ext;
          else if (this.st === CS.SizeDigits && c === 13) this.st = CS.SizeLF;
          else throw new HttpError(400, 'invalid chunk size');
          i++;
          break;
        }
        case CS.Ext: {
          const c = b[i];
          if (c === 13) this.st = CS.SizeLF;
          else if (c === 10 || c === 0 || c === 127) throw new HttpError(400, 'invalid chunk extension');
          i++;
          break;
        }
        case CS.SizeLF:
          if (b[i] !== 10) throw new HttpError(400, 'invalid chunk size line');
          i++;
          if (this.size === 0) this.st = CS.TrailerStart;
          else {
            this.remaining = this.size;
            this.st = CS.Data;
          }
          this.size = 0;
          this.digits = 0;
          break;
        case CS.Data: {
          const take = Math.min(this.remaining, n - i);
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) this.st = CS.DataCR;
          break;
        }
        case CS.DataCR:
          if (b[i] !== 13) throw new HttpError(400, 'missing CRLF after chunk data');
          i++;
          this.st = CS.DataLF;
          break;
        case CS.DataLF:
          if (b[i] !== 10) throw new HttpError(400, 'missing CRLF after chunk data');
          i++;
          this.st = CS.Size;
          break;
        case CS.TrailerStart:
          if (b[i] === 13) {
            this.st = CS.LastLF;
            i++;
          } else {
            this.trailerLen = 0;
            this.st = CS.TrailerLine;
          }
          break;
        case CS.TrailerLine: {
          const c = b[i];
          if (c === 13) this.st = CS.TrailerLF;
          else if (c === 10 || c === 0) throw new HttpError(400, 'invalid trailer');
          else if (++this.trailerLen > MAX_HEAD) throw new HttpError(400, 'trailer too large');
          i++;
          break;
        }
        case CS.TrailerLF:
          if (b[i] !== 10) throw new HttpError(400, 'invalid trailer');
          i++;
          this.st = CS.TrailerStart;
          break;
        case CS.LastLF:
          if (b[i] !== 10) throw new HttpError(400, 'invalid last chunk');
          i++;
          this.st = CS.Done;
          this.done = true;
          return i - start;
        case CS.Done:
          return i - start;
      }
    }
    return i - start;
  }
}

const REASONS: Record<number, string> = {
  200: 'OK', 400: 'Bad request', 401: 'Unauthorized', 403: 'Forbidden', 405: 'Method Not Allowed', 408: 'Request Time-out',
  413: 'Payload Too Large', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway',
  503: 'Service Unavailable', 504: 'Gateway Time-out', 505: 'HTTP Version Not Supported',
};

const EXPLAIN: Record<number, string> = {
  400: 'The request could not be understood.',
  401: 'This page needs a user name and a password.',
  403: 'Access to this resource is not allowed.',
  405: 'This method is not allowed here.',
  408: 'The request was not received completely in time.',
  431: 'The request headers are too large.',
  500: 'The proxy failed to handle the request.',
  502: 'The server returned an invalid or incomplete response.',
  503: 'No server is available to handle this request.',
  504: 'The server did not answer in time.',
  505: 'This HTTP version is not supported.',
};

export function reason(status: number): string {
  return REASONS[status] ?? 'Unknown';
}

/** A complete error response generated by the proxy (always with Connection: close). */
export function errorResponse(status: number, extraHeaders = ''): Buffer {
  const body = `<html><body><h1>${status} ${reason(status)}</h1>\n${EXPLAIN[status] ?? ''}\n</body></html>\n`;
  return Buffer.from(
    `HTTP/1.1 ${status} ${reason(status)}\r\ncontent-length: ${body.length}\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n${extraHeaders}connection: close\r\n\r\n${body}`,
    'latin1',
  );
}
