// Scaffolding for the proxy scenarios: the built proxy as a child process, fake HTTP backends on
// loopback, a UDP syslog sink, raw-socket clients and a stats socket client.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const proxyBin = join(root, 'dist', 'runtime', 'hasetup-proxy.cjs');
export const seedConfig = join(root, '..', 'shared', 'seed', 'haproxy.cfg');
/** The Node.js that runs the proxy: PROXY_NODE (e.g. a Node 18 binary, as on the LBs) or the test's own. */
export const proxyNode = process.env.PROXY_NODE || process.execPath;

/** Builds the bundle when a test file is run on its own (npm test builds it first). */
export function ensureBuilt(): void {
  if (existsSync(proxyBin) && !process.env.PROXY_REBUILD) return;
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('build failed');
}

/** The start of most scenario configs: one worker, HTTP mode, short timeouts. */
export const HTTP_DEFAULTS = `global
    nbthread 1
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
`;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until<T>(what: string, fn: () => T | Promise<T>, timeout = 15000, step = 20): Promise<NonNullable<T>> {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(step);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
  });
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  socketId: number;
}

export type BackendMode =
  { kind: 'ok' } | { kind: 'status'; status: number } | { kind: 'hang' } | { kind: 'reset' } | { kind: 'delay'; ms: number };

export interface FakeBackend {
  name: string;
  port: number;
  requests: SeenRequest[];
  checks: { at: number; status: number }[];
  mode: BackendMode;
  checkStatus: number;
  active: number;
  maxActive: number;
  close(): Promise<void>;
}

/** An HTTP backend that answers "<name> <method> <url>", counts health checks on /health apart. */
export async function fakeBackend(name: string, port = 0): Promise<FakeBackend> {
  let sockets = 0;
  const fb: FakeBackend = {
    name,
    port: 0,
    requests: [],
    checks: [],
    mode: { kind: 'ok' },
    checkStatus: 200,
    active: 0,
    maxActive: 0,
    close: async () => {},
  };
  const srv = http.createServer((req, res) => {
    const sid = (req.socket as net.Socket & { _fbId?: number })._fbId ?? 0;
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.url === '/health') {
        fb.checks.push({ at: Date.now(), status: fb.checkStatus });
        res.writeHead(fb.checkStatus, { 'content-type': 'text/plain' });
        res.end('health\n');
        return;
      }
      fb.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, socketId: sid });
      fb.active++;
      fb.maxActive = Math.max(fb.maxActive, fb.active);
      const answer = () => {
        fb.active--;
        res.writeHead(200, { 'content-type': 'text/plain', 'x-server': name });
        res.end(`${name} ${req.method} ${req.url}\n`);
      };
      const m = fb.mode;
      if (m.kind === 'ok') answer();
      else if (m.kind === 'delay') setTimeout(answer, m.ms);
      else if (m.kind === 'status') {
        fb.active--;
        res.writeHead(m.status, { 'x-server': name });
        res.end(`${name} status ${m.status}\n`);
      } else if (m.kind === 'reset') {
        fb.active--;
        req.socket.destroy();
      } else {
        // hang: never answer (the socket is closed by close())
        res.on('close', () => fb.active--);
      }
    });
  });
  srv.on('connection', (s: net.Socket & { _fbId?: number }) => (s._fbId = ++sockets));
  srv.keepAliveTimeout = 30000;
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', () => r()));
  fb.port = (srv.address() as net.AddressInfo).port;
  fb.close = () =>
    new Promise<void>((r) => {
      srv.closeAllConnections();
      srv.close(() => r());
    });
  return fb;
}

export interface SyslogSink {
  port: number;
  lines: string[];
  waitFor(re: RegExp, timeout?: number): Promise<string>;
  close(): void;
}

export async function syslogSink(): Promise<SyslogSink> {
  const s = createSocket('udp4');
  const lines: string[] = [];
  s.on('message', (m) => lines.push(m.toString('utf8').replace(/\n$/, '')));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return {
    port: s.address().port,
    lines,
    waitFor: (re, timeout = 15000) => until(`a log line matching ${re}`, () => lines.find((l) => re.test(l)), timeout),
    close: () => s.close(),
  };
}

export interface ProxyProc {
  proc: ChildProcess;
  dir: string;
  cfgFile: string;
  stderr: () => string;
  stdout: () => string;
  write(cfg: string): void;
  reload(): void;
  stop(): Promise<number | null>;
}

/** Starts the built proxy on a config text; resolves once `port` accepts connections. */
export async function startProxy(
  cfg: string,
  port: number,
  extraArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<ProxyProc> {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'hasetup-proxy-test-'));
  const cfgFile = join(dir, 'haproxy.cfg');
  writeFileSync(cfgFile, cfg);
  const proc = spawn(proxyNode, [proxyBin, '-f', cfgFile, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let err = '';
  let out = '';
  proc.stderr!.on('data', (d) => (err += d));
  proc.stdout!.on('data', (d) => (out += d));
  let exited = false;
  proc.on('exit', () => (exited = true));
  await until(`the proxy listening on ${port}`, async () => {
    if (exited) throw new Error(`proxy exited: ${err}`);
    return canConnect(port);
  }).catch((e) => {
    if (!exited) proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw e;
  });
  // every worker up (the port opens with the first one)
  if (!extraArgs.includes('-q')) await until('the proxy started', () => err.includes(' started ('));
  return {
    proc,
    dir,
    cfgFile,
    stderr: () => err,
    stdout: () => out,
    write: (c) => writeFileSync(cfgFile, c),
    reload: () => proc.kill('SIGHUP'),
    stop: () =>
      new Promise((res) => {
        if (exited) {
          rmSync(dir, { recursive: true, force: true });
          res(proc.exitCode);
          return;
        }
        const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
        proc.once('exit', (code) => {
          clearTimeout(t);
          rmSync(dir, { recursive: true, force: true });
          res(code);
        });
        proc.kill('SIGTERM');
      }),
  };
}

export interface HaproxyProc {
  stderr(): string;
  stop(): void;
}

/** Debian's HAProxy on config file `cfgFile`, in the foreground (-db), once `port` takes connections. */
export async function startHaproxy(cfgFile: string, port: number): Promise<HaproxyProc> {
  const proc = spawn('haproxy', ['-db', '-f', cfgFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  let exited = false;
  proc.on('exit', () => (exited = true));
  await until(`haproxy listening on ${port}`, async () => {
    if (exited) throw new Error(`haproxy exited: ${err}`);
    return canConnect(port);
  }).catch((e) => {
    proc.kill('SIGKILL');
    throw e;
  });
  return { stderr: () => err, stop: () => void proc.kill('SIGTERM') };
}

export function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((res) => {
    const s = net.connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

export interface SimpleResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request through node:http (a new connection unless an agent is given). */
export function get(
  port: number,
  path: string,
  opts: { agent?: http.Agent; headers?: Record<string, string>; method?: string; body?: string } = {},
): Promise<SimpleResponse> {
  return new Promise((res, rej) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', agent: opts.agent ?? false, headers: opts.headers },
      (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (d) => (body += d));
        r.on('end', () => res({ status: r.statusCode ?? 0, headers: r.headers, body }));
        r.on('error', rej);
      },
    );
    req.on('error', rej);
    req.setTimeout(20000, () => req.destroy(new Error('client timeout')));
    if (opts.body) req.write(opts.body);
    req.end();
  });
}

/** Sends raw bytes, returns everything received until the server closes (or the timeout). */
export function raw(
  port: number,
  data: string | Buffer | (string | Buffer)[],
  timeout = 5000,
  gap = 0,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((res) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let text = '';
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      res({ text, closed });
    };
    const t = setTimeout(() => finish(false), timeout);
    s.setEncoding('latin1');
    s.on('data', (d) => (text += d));
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
    s.on('connect', async () => {
      const parts = Array.isArray(data) ? data : [data];
      for (const p of parts) {
        if (s.destroyed) return;
        s.write(p);
        if (gap) await sleep(gap);
      }
    });
  });
}

/** One command on the runtime API socket. */
export function statsCommand(path: string, cmd: string): Promise<string> {
  return new Promise((res, rej) => {
    const s = net.connect(path);
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d) => (out += d));
    s.on('end', () => res(out));
    s.on('error', rej);
    s.on('connect', () => s.write(cmd + '\n'));
  });
}

/** CSV rows (objects keyed by the header) from a stats CSV text. */
export function parseCsv(text: string): Record<string, string>[] {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const header = lines[0].replace(/^# /, '').split(',');
  return lines.slice(1).map((l) => {
    const cells = l.split(',');
    const o: Record<string, string> = {};
    header.forEach((h, i) => h && (o[h] = cells[i] ?? ''));
    return o;
  });
}

export function tmpDir(): string {
  return mkdtempSync(join(tmpdir(), 'hasetup-proxy-t-'));
}

/** The proxy's worker threads (named proxy-worker-N by the proxy), as thread ids, in worker order. */
export function workerThreads(pid: number): number[] {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const named: [number, number][] = [];
  for (const t of tids) {
    try {
      const m = /^proxy-worker-(\d+)$/.exec(readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim());
      if (m) named.push([Number(m[1]), Number(t)]);
    } catch {}
  }
  return named.sort((a, b) => a[0] - b[0]).map(([, t]) => t);
}

/** CPU ticks (user + system) a thread of `pid` has used. */
export function threadTicks(pid: number, tid: number): number {
  const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** A self-signed certificate and key (RSA 2048) for these names, as one PEM file (HAProxy's format). */
export function makeCert(file: string, cn: string, names: string[]): void {
  const key = `${file}.tmpkey`;
  const crt = `${file}.tmpcrt`;
  const r = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      crt,
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
  const out = spawnSync('sh', ['-c', `cat "${crt}" "${key}" > "${file}" && rm -f "${crt}" "${key}"`]);
  if (out.status !== 0) throw new Error('could not write the certificate file');
}
