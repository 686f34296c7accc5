// Logging: syslog over UDP (RFC 3164 / RFC 5424) or stdout/stderr, and HAProxy's httplog and tcplog lines.
import { createSocket, type Socket } from 'node:dgram';
import { writeSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { hostname } from 'node:os';
import type { LogTarget } from './config.ts';

export const LOG_INFO = 6;
export const LOG_NOTICE = 5;
export const LOG_WARNING = 4;
export const LOG_ALERT = 1;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number) => (n < 10 ? '0' + n : '' + n);
const p3 = (n: number) => (n < 10 ? '00' + n : n < 100 ? '0' + n : '' + n);

/** 24/Nov/2026:04:56:34.640 (local time, as HAProxy's %tr). */
export function accessDate(ms: number): string {
  const d = new Date(ms);
  return `${p2(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.${p3(d.getMilliseconds())}`;
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
  private lines: string[] = [];
  private bytes = 0;
  private rest: Buffer | null = null; // taken from `lines` and not written yet (may start in the middle of a line)
  private scheduled = false;
  private retry: NodeJS.Timeout | null = null;

  constructor(
    private fd: number,
    private write: (fd: number, b: Buffer) => number = writeSync,
  ) {}

  push(line: string): void {
    const n = Buffer.byteLength(line) + 1;
    if (this.bytes + n + (this.rest?.length ?? 0) > FdLog.LIMIT) return;
    this.lines.push(line, '\n');
    this.bytes += n;
    if (!this.scheduled && !this.retry) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes what it can now; the rest is tried again later. */
  flush(): void {
    this.scheduled = false;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    let buf: Buffer = this.lines.length ? Buffer.from(this.lines.join('')) : Buffer.alloc(0);
    if (this.rest) buf = buf.length ? Buffer.concat([this.rest, buf]) : this.rest;
    this.lines = [];
    this.bytes = 0;
    this.rest = null;
    let off = 0;
    while (off < buf.length) {
      let end = Math.min(buf.length, off + FdLog.CHUNK);
      if (end < buf.length) {
        const nl = buf.lastIndexOf(10, end - 1);
        if (nl >= off) end = nl + 1; // else one line longer than a chunk: written in pieces
      }
      let n: number;
      try {
        n = this.write(this.fd, buf.subarray(off, end));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break;
        return; // the reader is gone (EPIPE, EBADF): nothing more can be written there
      }
      off += n;
      if (off < end) break; // part of it taken: the reader is behind
    }
    if (off < buf.length) {
      this.rest = Buffer.from(buf.subarray(off)); // a copy: buf may be a view of a larger pool
      this.retry = setTimeout(() => this.flush(), 10);
      this.retry.unref();
    }
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
    for (const t of targets) {
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
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 || c >= 127 || c === 34 || c === 35) out += '#' + c.toString(16).toUpperCase().padStart(2, '0');
    else out += s[i];
  }
  return out;
}
