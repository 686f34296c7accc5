// The httplog line encoded straight into a log buffer (FdLog's), byte for byte the text httpLogLine() makes, without
// the strings in between: a request's line is otherwise built from some forty pieces (numbers turned into strings,
// each concatenation a string of its own), flattened, then copied into the buffer, all garbage once written.
import type { HttpLogFields } from './log.ts';
import { accessDate } from './log.ts';

/** The most bytes encodeHttpLog writes for `f` (every string ASCII, every number at most 24 characters). */
export function httpLogMax(f: HttpLogFields): number {
  return f.clientIp.length + f.frontend.length + f.backend.length + f.server.length + f.term.length + f.requestLine.length + 13 * 24 + 80;
}

/** Writes `s` at `at`; -1 when it is not all ASCII (the caller then logs the line as a string). */
function str(b: Buffer, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 127) return -1;
    b[at + i] = c;
  }
  return at + s.length;
}

/** Writes the decimal text of `n` (as String(n) gives it) at `at`. */
function num(b: Buffer, at: number, n: number): number {
  if (!Number.isInteger(n) || n > 0x7fffffff || n < -0x7fffffff) return str(b, at, String(n));
  if (n < 0) {
    b[at++] = 45; // -
    n = -n;
  }
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  for (let i = at + digits - 1; i >= at; i--) {
    b[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  return at + digits;
}

/**
 * HAProxy's default httplog line (httpLogLine's text, no newline) written into `b` from `at`, which has room for
 * httpLogMax(f) bytes: the end, or -1 when a string is not ASCII (nothing is then to be kept of what was written).
 */
export function encodeHttpLog(b: Buffer, at: number, f: HttpLogFields): number {
  let o = str(b, at, f.clientIp);
  if (o < 0) return -1;
  b[o++] = 58; // :
  o = num(b, o, f.clientPort);
  b[o++] = 32;
  b[o++] = 91; // [
  o = str(b, o, accessDate(f.start));
  b[o++] = 93; // ]
  b[o++] = 32;
  o = str(b, o, f.frontend);
  if (o < 0) return -1;
  b[o++] = 32;
  o = str(b, o, f.backend);
  if (o < 0) return -1;
  b[o++] = 47; // /
  o = str(b, o, f.server);
  if (o < 0) return -1;
  b[o++] = 32;
  o = num(b, o, f.TR);
  b[o++] = 47;
  o = num(b, o, f.Tw);
  b[o++] = 47;
  o = num(b, o, f.Tc);
  b[o++] = 47;
  o = num(b, o, f.Tr);
  b[o++] = 47;
  o = num(b, o, f.Ta);
  b[o++] = 32;
  o = num(b, o, f.status);
  b[o++] = 32;
  o = num(b, o, f.bytes);
  o = str(b, o, ' - - ');
  o = str(b, o, f.term);
  if (o < 0) return -1;
  o = str(b, o, '-- ');
  o = num(b, o, f.actconn);
  b[o++] = 47;
  o = num(b, o, f.feconn);
  b[o++] = 47;
  o = num(b, o, f.beconn);
  b[o++] = 47;
  o = num(b, o, f.srvconn);
  b[o++] = 47;
  if (f.redispatched) b[o++] = 43; // +
  o = num(b, o, f.retries);
  b[o++] = 32;
  o = num(b, o, f.srvQueue);
  b[o++] = 47;
  o = num(b, o, f.backQueue);
  b[o++] = 32;
  b[o++] = 34; // "
  o = str(b, o, f.requestLine);
  if (o < 0) return -1;
  b[o++] = 34;
  return o;
}
