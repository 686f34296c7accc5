// Logging: syslog over UDP (RFC 3164 / RFC 5424) or stdout/stderr, and HAProxy's httplog and tcplog lines.
import { createSocket, type Socket } from 'node:dgram';
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
      } else if (t.kind === 'stdout') process.stdout.write(line + '\n');
      else process.stderr.write(line + '\n');
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
