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

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Request target: visible ASCII only (no space, no control, no DEL, no byte >= 0x80).
const URI = /^[\x21-\x7e]+$/;

/** Index just past the end of the head (blank line) in buf, or -1 when not complete yet. */
const HEAD_END = Buffer.from('\r\n\r\n');

export function findHeadEnd(buf: Buffer): number {
  const i = buf.indexOf(HEAD_END);
  if (i >= 0) return i + 4;
  return -1;
}

// Header-name characters (RFC 9110 token), by char code.
const TCHAR = new Uint8Array(128);
for (const ch of "!#$%&'*+-.^_`|~") TCHAR[ch.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = TCHAR[c + 32] = 1;

// Lower-case forms of the header names seen: most heads repeat the same few names.
const lnames = new Map<string, string>();
function lower(name: string): string {
  let l = lnames.get(name);
  if (l === undefined) {
    l = name.toLowerCase();
    if (lnames.size < 1000) lnames.set(name, l);
  }
  return l;
}

/** What the framing and connection headers of a message say. */
interface Semantics {
  contentLength: number;
  te: string[] | null; // Transfer-Encoding codings, in order
  close: boolean; // Connection: close
  keepAliveToken: boolean; // Connection: keep-alive
  upgradeToken: boolean; // Connection: upgrade
  upgradeHeader: boolean; // an Upgrade header
  hosts: number;
  hopByHop: boolean;
}

const DIGITS = /^\d{1,15}$/;

/** Takes note of a header that matters to framing or connection handling (lname: its lower-case name). */
function note(m: Semantics, lname: string, value: string): void {
  switch (lname) {
    case 'content-length':
      if (value.includes(',')) for (const part of value.split(',')) contentLength(m, part.trim());
      else contentLength(m, value);
      break;
    case 'transfer-encoding':
      m.te = (m.te ?? ([] as string[])).concat(value.split(',').map((x) => x.trim().toLowerCase()));
      break;
    case 'host':
      m.hosts++;
      break;
    case 'upgrade':
      m.upgradeHeader = true;
      break;
    case 'connection':
      m.hopByHop = true;
      for (const t of value.split(',')) {
        const v = t.trim().toLowerCase();
        if (v === 'close') m.close = true;
        else if (v === 'keep-alive') m.keepAliveToken = true;
        else if (v === 'upgrade') m.upgradeToken = true;
      }
      break;
    case 'keep-alive':
    case 'proxy-connection':
      m.hopByHop = true;
      break;
  }
}

/** One Content-Length value (of a header, or of a comma-separated list): all must agree. */
function contentLength(m: Semantics, v: string): void {
  if (!DIGITS.test(v)) throw new HttpError(400, 'invalid Content-Length');
  const num = Number(v);
  if (m.contentLength >= 0 && m.contentLength !== num) throw new HttpError(400, 'conflicting Content-Length headers');
  m.contentLength = num;
}

// The header names note() cares about, by length: a line is matched without slicing or hashing its name.
const NOTED: string[][] = [];
for (const n of ['content-length', 'transfer-encoding', 'host', 'upgrade', 'connection', 'keep-alive', 'proxy-connection'])
  (NOTED[n.length] ??= []).push(n);

/** The lower-case name among NOTED that text[from..to) spells in any case, or null. */
function notedName(text: string, from: number, to: number): string | null {
  const cands = NOTED[to - from];
  if (!cands) return null;
  next: for (const n of cands) {
    for (let i = 0; i < n.length; i++) {
      const c = text.charCodeAt(from + i);
      if ((c >= 65 && c <= 90 ? c + 32 : c) !== n.charCodeAt(i)) continue next;
    }
    return n;
  }
  return null;
}

/**
 * Checks every header line of a head's text from `from` (the start of the first header line) and notes the ones
 * that matter, without building an object per header: most heads are only forwarded.
 */
function scanHeaders(text: string, from: number, m: Semantics): void {
  const n = text.length;
  let i = from;
  while (i < n) {
    let e = text.indexOf('\r\n', i);
    if (e < 0) e = n;
    const c0 = text.charCodeAt(i);
    if (c0 === 32 || c0 === 9) throw new HttpError(400, 'obsolete header folding');
    let k = i;
    for (; k < e; k++) {
      const c = text.charCodeAt(k);
      if (c === 58 /* : */) break;
      if (c >= 128 || TCHAR[c] === 0) {
        if (c === 13 || c === 10) throw new HttpError(400, 'bare CR or LF in the header');
        const nl = text.slice(k, e).search(/[\r\n]/);
        throw new HttpError(400, nl >= 0 ? 'bare CR or LF in the header' : 'invalid header name');
      }
    }
    if (k === e || k === i) throw new HttpError(400, 'header line without a name');
    // the value without the optional white space around it; no control character inside
    let vs = k + 1;
    let ve = e;
    while (vs < ve && (text.charCodeAt(vs) === 32 || text.charCodeAt(vs) === 9)) vs++;
    while (ve > vs && (text.charCodeAt(ve - 1) === 32 || text.charCodeAt(ve - 1) === 9)) ve--;
    for (let j = vs; j < ve; j++) {
      const c = text.charCodeAt(j);
      if ((c < 32 && c !== 9) || c === 127)
        throw new HttpError(400, c === 13 || c === 10 ? 'bare CR or LF in the header' : 'control character in a header value');
    }
    const noted = notedName(text, i, k);
    if (noted) note(m, noted, text.slice(vs, ve));
    i = e + 2;
  }
}

/** The header lines of an already checked head's text, as objects. */
function headerList(text: string, from: number): Header[] {
  const headers: Header[] = [];
  const n = text.length;
  let i = from;
  while (i < n) {
    let e = text.indexOf('\r\n', i);
    if (e < 0) e = n;
    const k = text.indexOf(':', i);
    let vs = k + 1;
    let ve = e;
    while (vs < ve && (text.charCodeAt(vs) === 32 || text.charCodeAt(vs) === 9)) vs++;
    while (ve > vs && (text.charCodeAt(ve - 1) === 32 || text.charCodeAt(ve - 1) === 9)) ve--;
    const name = text.slice(i, k);
    headers.push({ name, lname: lower(name), value: text.slice(vs, ve) });
    i = e + 2;
  }
  return headers;
}

/** Content-Length or chunked framing from the noted headers; throws on anything ambiguous. */
function framing(m: Semantics, version: 10 | 11, isRequest: boolean): { contentLength: number; chunked: boolean } {
  if (!m.te) return { contentLength: m.contentLength, chunked: false };
  if (m.contentLength >= 0 && isRequest) throw new HttpError(400, 'both Content-Length and Transfer-Encoding');
  if (isRequest && version === 10) throw new HttpError(400, 'Transfer-Encoding in an HTTP/1.0 request');
  const codings = m.te.filter((x) => x);
  if (codings.length === 0) throw new HttpError(400, 'empty Transfer-Encoding');
  if (codings[codings.length - 1] !== 'chunked' || codings.indexOf('chunked') !== codings.length - 1) {
    if (isRequest) throw new HttpError(400, 'Transfer-Encoding does not end with a single chunked');
    return { contentLength: -1, chunked: false }; // response body delimited by the close
  }
  for (const c of codings) if (!TOKEN.test(c)) throw new HttpError(400, 'invalid Transfer-Encoding');
  return { contentLength: -1, chunked: true };
}

// One Semantics serves every parse: a parse runs to its end synchronously and keeps nothing of it.
const SEM: Semantics = {
  contentLength: -1,
  te: null,
  close: false,
  keepAliveToken: false,
  upgradeToken: false,
  upgradeHeader: false,
  hosts: 0,
  hopByHop: false,
};

function newSemantics(): Semantics {
  const m = SEM;
  m.contentLength = -1;
  m.te = null;
  m.close = m.keepAliveToken = m.upgradeToken = m.upgradeHeader = m.hopByHop = false;
  m.hosts = 0;
  return m;
}

/** A parsed head; its header objects are built the first time they are asked for. */
class Head {
  private list: Header[] | null = null;
  constructor(
    private text: string,
    private from: number,
  ) {}
  get headers(): Header[] {
    return (this.list ??= headerList(this.text, this.from));
  }
}

class ParsedRequest extends Head implements RequestHead {
  constructor(
    text: string,
    from: number,
    public method: string,
    public uri: string,
    public path: string,
    public version: 10 | 11,
    public contentLength: number,
    public chunked: boolean,
    public keepAlive: boolean,
    public upgrade: boolean,
    public headBytes: number,
    public hopByHop: boolean,
  ) {
    super(text, from);
  }
}

class ParsedResponse extends Head implements ResponseHead {
  constructor(
    text: string,
    from: number,
    public version: 10 | 11,
    public status: number,
    public reason: string,
    public contentLength: number,
    public chunked: boolean,
    public keepAlive: boolean,
    public headBytes: number,
    public hopByHop: boolean,
  ) {
    super(text, from);
  }
}

/** Parses a complete request head (buf[0..end) where end comes from findHeadEnd). */
export function parseRequestHead(buf: Buffer, end: number): RequestHead {
  const text = buf.toString('latin1', 0, end - 4);
  let eol = text.indexOf('\r\n');
  if (eol < 0) eol = text.length;
  const sp1 = text.indexOf(' ');
  const sp2 = text.lastIndexOf(' ', eol - 1);
  if (sp1 <= 0 || sp1 >= eol || sp2 === sp1) throw new HttpError(400, 'invalid request line');
  const method = text.slice(0, sp1);
  const uri = text.slice(sp1 + 1, sp2);
  const ver = text.slice(sp2 + 1, eol);
  if (method !== 'GET' && method !== 'POST' && method !== 'HEAD' && !TOKEN.test(method)) throw new HttpError(400, 'invalid method');
  if (!URI.test(uri)) throw new HttpError(400, 'invalid request target');
  let version: 10 | 11;
  if (ver === 'HTTP/1.1') version = 11;
  else if (ver === 'HTTP/1.0') version = 10;
  else if (/^HTTP\/\d\.\d$/.test(ver)) throw new HttpError(505, 'unsupported HTTP version');
  else throw new HttpError(400, /[\r\n]/.test(ver) ? 'bare CR or LF in the header' : 'invalid HTTP version');
  if (method === 'CONNECT') throw new HttpError(405, 'CONNECT is not supported');
  const m = newSemantics();
  scanHeaders(text, eol + 2, m);
  let contentLength = m.contentLength;
  let chunked = false;
  if (m.te) ({ contentLength, chunked } = framing(m, version, true));
  if (m.hosts > 1) throw new HttpError(400, 'several Host headers');
  if (version === 11 && m.hosts === 0) throw new HttpError(400, 'HTTP/1.1 request without Host');
  let path = uri;
  if (uri.charCodeAt(0) !== 47 /* / */ && uri !== '*') {
    const abs = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*(.*)$/.exec(uri);
    if (!abs) throw new HttpError(400, 'invalid request target');
    path = abs[1] || '/';
  }
  const keepAlive = version === 11 ? !m.close : m.keepAliveToken;
  return new ParsedRequest(
    text,
    eol + 2,
    method,
    uri,
    path,
    version,
    contentLength,
    chunked,
    keepAlive,
    m.upgradeToken && m.upgradeHeader,
    end,
    m.hopByHop,
  );
}

/** Parses a complete response head. */
export function parseResponseHead(buf: Buffer, end: number): ResponseHead {
  const text = buf.toString('latin1', 0, end - 4);
  let eol = text.indexOf('\r\n');
  if (eol < 0) eol = text.length;
  // HTTP/1.x NNN[ reason]
  const ok =
    eol >= 12 &&
    text.startsWith('HTTP/1.') &&
    (text.charCodeAt(7) === 48 || text.charCodeAt(7) === 49) &&
    text.charCodeAt(8) === 32 &&
    isDigit(text.charCodeAt(9)) &&
    isDigit(text.charCodeAt(10)) &&
    isDigit(text.charCodeAt(11)) &&
    (eol === 12 || text.charCodeAt(12) === 32);
  if (!ok) throw new HttpError(502, 'invalid status line');
  for (let i = 13; i < eol; i++) {
    const c = text.charCodeAt(i);
    if (c === 13 || c === 10) throw new HttpError(502, 'invalid status line');
  }
  const reason = eol > 13 ? text.slice(13, eol) : '';
  const version = text.charCodeAt(7) === 49 ? 11 : 10;
  const status = (text.charCodeAt(9) - 48) * 100 + (text.charCodeAt(10) - 48) * 10 + (text.charCodeAt(11) - 48);
  if (status < 100) throw new HttpError(502, 'invalid status code');
  const m = newSemantics();
  scanHeaders(text, eol + 2, m);
  let contentLength = m.contentLength;
  let chunked = false;
  if (m.te) ({ contentLength, chunked } = framing(m, version, false));
  const keepAlive = version === 11 ? !m.close : m.keepAliveToken;
  return new ParsedResponse(text, eol + 2, version, status, reason, contentLength, chunked, keepAlive, end, m.hopByHop);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
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

// the states that expect one given byte: that byte, the next state, and the error when another comes
const FIXED_BYTES: Record<number, [number, CS, string]> = {
  [CS.DataCR]: [13, CS.DataLF, 'missing CRLF after chunk data'],
  [CS.DataLF]: [10, CS.Size, 'missing CRLF after chunk data'],
  [CS.TrailerLF]: [10, CS.TrailerStart, 'invalid trailer'],
  [CS.LastLF]: [10, CS.Done, 'invalid last chunk'],
};

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
        case CS.DataLF:
        case CS.TrailerLF:
        case CS.LastLF: {
          const [want, next, what] = FIXED_BYTES[this.st];
          if (b[i] !== want) throw new HttpError(400, what);
          i++;
          this.st = next;
          if (next === CS.Done) {
            this.done = true;
            return i - start;
          }
          break;
        }
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
        case CS.Done:
          return i - start;
      }
    }
    return i - start;
  }
}

const REASONS: Record<number, string> = {
  200: 'OK',
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  405: 'Method Not Allowed',
  408: 'Request Time-out',
  413: 'Payload Too Large',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Time-out',
  505: 'HTTP Version Not Supported',
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
