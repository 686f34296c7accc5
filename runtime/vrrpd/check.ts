// Health checks built into hasetup-vrrpd for vrrp_script, so an LB can track its local proxy without
// curl or a shell:
//   vrrp_script chk_proxy {
//     script "/usr/bin/node /opt/hasetup/hasetup-vrrpd.cjs --check-http http://127.0.0.1/health"
//   }
// `hasetup-vrrpd --check-http URL` / `--check-tcp HOST:PORT` exit 0 when healthy, 1 otherwise. When a
// vrrp_script names hasetup-vrrpd itself this way, the daemon runs the check in-process instead of
// starting a Node process every interval (same result, a fraction of the CPU).
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { basename } from 'node:path';

export type SelfCheck = { kind: 'http'; url: string } | { kind: 'tcp'; host: string; port: number };

/**
 * A check that settles once: start(finish) begins it and returns what stops it when it overruns `timeoutMs`
 * (then it is a failure).
 */
export function timedCheck(timeoutMs: number, start: (finish: (ok: boolean) => void) => () => void): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(ok);
    };
    const timer = setTimeout(() => {
      stop();
      finish(false);
    }, timeoutMs);
    const stop = start(finish);
  });
}

/** HTTP(S) GET: healthy on a status below 400 within the timeout. */
export function httpCheck(url: string, timeoutMs: number): Promise<boolean> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return Promise.resolve(false);
  }
  return timedCheck(timeoutMs, (finish) => {
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
      u,
      { method: 'GET', headers: { 'user-agent': 'hasetup-vrrpd-check' } },
      (res) => {
        res.resume();
        finish((res.statusCode ?? 500) < 400);
        req.destroy();
      },
    );
    req.on('error', () => finish(false));
    req.end();
    return () => req.destroy();
  });
}

/** TCP connect: healthy when the connection opens within the timeout. */
export function tcpCheck(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return timedCheck(timeoutMs, (finish) => {
    const s = connect({ host, port });
    const end = (ok: boolean) => {
      s.destroy();
      finish(ok);
    };
    s.on('connect', () => end(true));
    s.on('error', () => end(false));
    return () => s.destroy();
  });
}

export function parseTcpTarget(t: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(t);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1] ?? m[2], port };
}

/** Recognises `[node] .../hasetup-vrrpd[.cjs] --check-http URL | --check-tcp HOST:PORT`. */
export function parseSelfCheck(argv: string[]): SelfCheck | null {
  let i = 0;
  if (/^(node|nodejs)$/.test(basename(argv[0] ?? ''))) i = 1;
  if (!/^hasetup-vrrpd(\.cjs)?$/.test(basename(argv[i] ?? ''))) return null;
  const rest = argv.slice(i + 1);
  if (rest.length !== 2) return null;
  if (rest[0] === '--check-http' && /^https?:\/\//.test(rest[1])) return { kind: 'http', url: rest[1] };
  if (rest[0] === '--check-tcp') {
    const t = parseTcpTarget(rest[1]);
    if (t) return { kind: 'tcp', ...t };
  }
  return null;
}

export function runSelfCheck(c: SelfCheck, timeoutMs: number): Promise<boolean> {
  return c.kind === 'http' ? httpCheck(c.url, timeoutMs) : tcpCheck(c.host, c.port, timeoutMs);
}
