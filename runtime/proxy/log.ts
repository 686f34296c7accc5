// Logging: syslog over UDP (RFC 3164 / RFC 5424) or stdout/stderr, and HAProxy's httplog and tcplog lines.
import { createSocket, type Socket } from 'node:dgram';
import { writeSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { hostname } from 'node:os';
import type { LogTarget } from './config.ts';
import { encodeHttpLog, httpLogMax } from './log-encode.ts';

export const LOG_INFO = 6;
export const LOG_NOTICE = 5;
export const LOG_WARNING = 4;
export const LOG_ALERT = 1;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number) => (n < 10 ? '0' + n : '' + n);
const p3 = (n: number) => (n < 10 ? '00' + n : n < 100 ? '0' + n : '' + n);

// the last second formatted by accessDate: every request of that second reuses it (a time zone's offset from UTC is
// a whole number of seconds, so a local second starts and ends with a UTC one)
let dateSecond = NaN;
let dateText = '';

/** 24/Nov/2026:04:56:34.640 (local time, as HAProxy's %tr). */
export function accessDate(ms: number): string {
  const t = Math.floor(ms);
  const sec = Math.floor(t / 1000);
  if (sec !== dateSecond) {
    const d = new Date(t);
    dateText = `${p2(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.`;
    dateSecond = sec;
  }
  return dateText + p3(t - sec * 1000);
}

function rfc3164Date(d: Date): string {
  const day = d.getDate();
  return `${MONTHS[d.getMonth()]} ${day < 10 ? ' ' + day : day} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}

/**
 * Log lines for a file descriptor (stdout, stderr: the journal under systemd), written by the thread that logs them.
 * Lines logged during one turn of the event loop go out together once that turn is over, in writes of whole lines of
 * at most 4 KB: a write that size to a pipe is never split or mixed with another thread's (PIPE_BUF), so the workers
 * of one process can write to the same descriptor without a thread of their own. Never waits: the descriptors are
 * non-blocking (Node makes a pipe or socket non-blocking when the main thread opens process.stdout or stderr on it,
 * which fdLog() does before any line is written, see below), and when the reader is behind (EAGAIN, or part of a write
 * taken) the rest is kept and tried again 10 ms later, up to 1 MB; lines beyond that are dropped, as HAProxy drops what
 * its log output does not take. Why not process.stdout: in a worker thread it hands every line to the main thread (a
 * message each way and the main thread's stream machinery per request), which made the main thread a cost of every
 * request.
 */
export class FdLog {
  static readonly CHUNK = 4096;
  static readonly LIMIT = 1 << 20;
  /** the buffer's size when it is empty again: a backlog's growth is given back */
  static readonly KEEP = 16 << 10;
  // the lines not written yet, encoded in place: [0, used) of one buffer kept from one turn to the next, so a line
  // costs no string joined, no buffer made and no array per line (it may start in the middle of a line: the part of
  // a write the reader did not take)
  private buf: Buffer = Buffer.allocUnsafeSlow(0);
  private used = 0;
  private scheduled = false;
  private retry: NodeJS.Timeout | null = null;
  private readonly flushNow = () => this.flush();

  constructor(
    private fd: number,
    private write: (fd: number, b: Buffer) => number = writeSync,
  ) {}

  /** The bytes kept to be written (the buffer's capacity is its own). */
  get pending(): number {
    return this.used;
  }

  /** The buffer the lines are kept in (the same one from a turn to the next, while it is not grown or given back). */
  get storage(): Buffer {
    return this.buf;
  }

  push(line: string): void {
    const n = Buffer.byteLength(line) + 1;
    if (this.used + n > FdLog.LIMIT) return;
    if (this.used + n > this.buf.length) this.grow(this.used + n);
    this.used += this.buf.write(line, this.used);
    this.buf[this.used++] = 10;
    if (!this.scheduled && !this.retry) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
  }

  /**
   * Encodes a line straight into the buffer: `encode(buffer, at, x)` writes at most `max` bytes from `at` and
   * returns where it ended, or -1 to keep nothing of it. False when the line was not taken (not encodable, or the
   * buffer near its limit): the caller then pushes it as a string.
   */
  pushEncoded<T>(max: number, encode: (b: Buffer, at: number, x: T) => number, x: T): boolean {
    if (this.used + max + 1 > FdLog.LIMIT) return false;
    if (this.used + max + 1 > this.buf.length) this.grow(this.used + max + 1);
    const end = encode(this.buf, this.used, x);
    if (end < 0) return false;
    this.buf[end] = 10;
    this.used = end + 1;
    if (!this.scheduled && !this.retry) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
    return true;
  }

  private grow(need: number): void {
    let size = Math.max(this.buf.length * 2, FdLog.KEEP);
    while (size < need) size *= 2;
    const b = Buffer.allocUnsafeSlow(Math.min(size, FdLog.LIMIT));
    this.buf.copy(b, 0, 0, this.used);
    this.buf = b;
  }

  /** Writes what it can now; the rest is tried again later. */
  flush(): void {
    this.scheduled = false;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    const buf = this.buf;
    const len = this.used;
    let off = 0;
    while (off < len) {
      let end = Math.min(len, off + FdLog.CHUNK);
      if (end < len) {
        const nl = buf.lastIndexOf(10, end - 1);
        if (nl >= off) end = nl + 1; // else one line longer than a chunk: written in pieces
      }
      let n: number;
      try {
        n = this.write(this.fd, buf.subarray(off, end));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break;
        this.used = 0; // the reader is gone (EPIPE, EBADF): nothing more can be written there
        return;
      }
      off += n;
      if (off < end) break; // part of it taken: the reader is behind
    }
    if (off < len) {
      buf.copy(buf, 0, off, len);
      this.used = len - off;
      this.retry = setTimeout(this.flushNow, 10);
      this.retry.unref();
      return;
    }
    this.used = 0;
    if (buf.length > FdLog.KEEP) this.buf = Buffer.allocUnsafeSlow(FdLog.KEEP);
  }
}

// The main thread opens process.stdout and stderr at start (threads.ts and main.ts load this module before any
// worker exists): that makes a pipe or socket descriptor non-blocking for every thread. Without it a blocking
// descriptor whose reader is behind would stop the thread that writes a log line, and its traffic with it.
if (isMainThread) void [process.stdout, process.stderr];

const fdLogs = new Map<number, FdLog>();
/** This thread's sink for fd (1 or 2), flushed when the thread ends. */
function fdLog(fd: number): FdLog {
  let s = fdLogs.get(fd);
  if (!s) {
    if (fdLogs.size === 0) process.on('exit', () => fdLogs.forEach((x) => x.flush()));
    s = new FdLog(fd);
    fdLogs.set(fd, s);
  }
  return s;
}

export class Logger {
  private udp: Socket | null = null;
  private host = hostname();

  constructor(private tag: string) {}

  send(targets: LogTarget[], level: number, msg: string): void {
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i];
      if (level > t.maxLevel) continue;
      let line: string;
      const pri = t.facility * 8 + level;
      if (t.format === 'raw') line = msg;
      else if (t.format === 'rfc5424') line = `<${pri}>1 ${new Date().toISOString()} ${this.host} ${this.tag} ${process.pid} - - ${msg}`;
      else line = `<${pri}>${rfc3164Date(new Date())} ${this.tag}[${process.pid}]: ${msg}`;
      if (t.kind === 'udp') {
        if (!this.udp) {
          this.udp = createSocket('udp4');
          this.udp.on('error', () => {});
          this.udp.unref();
        }
        this.udp.send(line + '\n', t.port, t.host);
      } else fdLog(t.kind === 'stdout' ? 1 : 2).push(line);
    }
  }

  /**
   * An httplog line: encoded straight into the log buffer for stdout and stderr targets in raw format (the role's),
   * made as a string (httpLogLine) for the others.
   */
  sendHttp(targets: LogTarget[], level: number, f: HttpLogFields): void {
    let line: string | null = null;
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i];
      if (level > t.maxLevel) continue;
      if (t.kind !== 'udp' && t.format === 'raw' && fdLog(t.kind === 'stdout' ? 1 : 2).pushEncoded(httpLogMax(f), encodeHttpLog, f))
        continue;
      line ??= httpLogLine(f);
      this.send([t], level, line);
    }
  }

  close(): void {
    this.udp?.close();
    this.udp = null;
  }
}

export interface HttpLogFields {
  clientIp: string;
  clientPort: number;
  start: number; // ms epoch of the first byte of the request (or the accept)
  frontend: string;
  backend: string;
  server: string; // '<NOSRV>', '<STATS>' or a server name
  TR: number;
  Tw: number;
  Tc: number;
  Tr: number;
  Ta: number;
  status: number;
  bytes: number;
  term: string; // two characters, e.g. '--', 'SC', 'cR'
  actconn: number;
  feconn: number;
  beconn: number;
  srvconn: number;
  retries: number;
  redispatched: boolean;
  srvQueue: number;
  backQueue: number;
  requestLine: string;
}

/** HAProxy's default httplog format (no captures). */
export function httpLogLine(f: HttpLogFields): string {
  return (
    `${f.clientIp}:${f.clientPort} [${accessDate(f.start)}] ${f.frontend} ${f.backend}/${f.server} ` +
    `${f.TR}/${f.Tw}/${f.Tc}/${f.Tr}/${f.Ta} ${f.status} ${f.bytes} - - ${f.term}-- ` +
    `${f.actconn}/${f.feconn}/${f.beconn}/${f.srvconn}/${f.redispatched ? '+' : ''}${f.retries} ${f.srvQueue}/${f.backQueue} "${f.requestLine}"`
  );
}

/** HAProxy's default tcplog format: %ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq */
export function tcpLogLine(f: HttpLogFields & { Tt: number }): string {
  return (
    `${f.clientIp}:${f.clientPort} [${accessDate(f.start)}] ${f.frontend} ${f.backend}/${f.server} ${f.Tw}/${f.Tc}/${f.Tt} ${f.bytes} ${f.term} ` +
    `${f.actconn}/${f.feconn}/${f.beconn}/${f.srvconn}/${f.redispatched ? '+' : ''}${f.retries} ${f.srvQueue}/${f.backQueue}`
  );
}

/** The request line as logged: non-printable bytes and quotes escaped as #XX. */
export function logEscape(s: string): string {
  let i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 || c >= 127 || c === 34 || c === 35) break;
  }
  if (i === s.length) return s; // nothing to escape (the usual case): no copy
  let out = s.slice(0, i);
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 || c >= 127 || c === 34 || c === 35) out += '#' + c.toString(16).toUpperCase().padStart(2, '0');
    else out += s[i];
  }
  return out;
}
