// The global section of haproxy.cfg, and where the workers run (cpu-map).
import type { Alert, GlobalConfig, StatsSocketConfig, Where } from './config-types.ts';
import { oneArg, parseIntStrict, parseLog, parseTime } from './config-values.ts';
import { parseTlsOptions } from './config-tls.ts';

function parseCpuSet(args: string[]): number[] {
  const out = new Set<number>();
  for (const part of args.join(',').split(',').filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`invalid CPU set '${part}' (expects numbers and ranges like 0-3)`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b > 1023) throw new Error(`invalid CPU range '${part}'`);
    for (let c = a; c <= b; c++) out.add(c);
  }
  if (out.size === 0) throw new Error("'cpu-map' expects a CPU set");
  return [...out].sort((x, y) => x - y);
}

/**
 * `cpu-map [auto:]<process>[/<threads>] <cpus>...`. Our workers are HAProxy's threads of its one
 * process: the process part is 1 or all; threads are all, N or N-M.
 */
function parseCpuMap(args: string[]): { auto: boolean; from: number; to: number; cpus: number[] } {
  if (args.length < 2) throw new Error("'cpu-map' expects [auto:]<process>[/<threads>] and a CPU set");
  let spec = args[0];
  const auto = spec.startsWith('auto:');
  if (auto) spec = spec.slice(5);
  const [proc, threads = 'all'] = spec.split('/');
  if (proc !== '1' && proc !== 'all' && proc !== '1-1')
    throw new Error(`'cpu-map' process set '${proc}': this proxy is one process with worker threads (use 1/<threads>)`);
  let from = 1;
  let to = Infinity;
  if (threads !== 'all') {
    const m = /^(\d+)(?:-(\d+))?$/.exec(threads);
    if (!m || Number(m[1]) < 1 || (m[2] !== undefined && Number(m[2]) < Number(m[1])))
      throw new Error(`invalid thread set '${threads}' in 'cpu-map' (all, N or N-M)`);
    from = Number(m[1]);
    to = m[2] === undefined ? from : Number(m[2]);
  }
  const cpus = parseCpuSet(args.slice(1));
  if (auto && to !== Infinity && to - from + 1 !== cpus.length)
    throw new Error(`'cpu-map auto:' maps one thread per CPU: ${to - from + 1} threads but ${cpus.length} CPUs`);
  return { auto, from, to, cpus };
}

/**
 * The CPUs worker `slot` (0-based) runs on, or null for no restriction. The last `cpu-map` line that
 * names its thread decides; without one a worker is free, as HAProxy 2.6's threads are. Workers are not
 * tied to a CPU of their own by default: on an LB the CPUs are shared with the journal, keepalived and
 * whatever else runs there, and a worker tied to a busy CPU waits for it while the other idles (the
 * open-loop latency of bench/proxy/latency.ts in the deployed shape: p90 up to ten times HAProxy's with
 * the workers tied, HAProxy's figures with them free).
 */
export function workerCpus(g: GlobalConfig, slot: number): number[] | null {
  const t = slot + 1;
  let pick: number[] | null = null;
  for (const m of g.cpuMaps) {
    if (t < m.from || t > m.to) continue;
    pick = m.auto ? [m.cpus[(t - m.from) % m.cpus.length]] : m.cpus;
  }
  return pick;
}

export function parseGlobal(g: GlobalConfig, w: string[], where: Where, warnings: Alert[]): void {
  const kw = w[0];
  const one = (): string => oneArg(w);
  switch (kw) {
    case 'log':
      g.logs.push(...parseLog(w, null));
      return;
    case 'maxconn':
      g.maxconn = parseIntStrict(one(), 'maxconn', 1);
      return;
    case 'uid':
    case 'gid':
      g[kw] = parseIntStrict(one(), kw, 0);
      return;
    case 'user':
    case 'group':
    case 'pidfile':
    case 'node':
      g[kw] = one();
      return;
    case 'daemon':
      if (w.length > 1) throw new Error('takes no argument');
      g.daemon = true;
      return;
    case 'nbthread':
      g.nbthread = parseIntStrict(one(), kw, 1, 64);
      return;
    case 'nbproc':
      throw new Error(
        'nbproc is not supported any more since HAProxy 2.5. Threads will automatically be used on multi-processor machines if available (nbthread sets their number).',
      );
      return;
    case 'cpu-map':
      g.cpuMaps.push({ ...parseCpuMap(w.slice(1)), ...where });
      return;
    case 'ssl-default-bind-ciphers':
      g.tlsDefaults.ciphers = one();
      return;
    case 'ssl-default-bind-ciphersuites':
      g.tlsDefaults.ciphersuites = one();
      return;
    case 'ssl-default-bind-options':
      parseTlsOptions(w.slice(1), g.tlsDefaults);
      return;
    case 'crt-base':
      g.tlsDefaults.crtBase = one();
      return;
    case 'ca-base': // where ca-file would look: nothing here uses it (client certificates are not supported)
      one();
      return;
    case 'log-tag':
      g.logTag = one();
      return;
    case 'stats': {
      if (w[1] === 'socket') {
        const path = w[2];
        if (!path) throw new Error("'stats socket' expects a path");
        if (!path.startsWith('/')) throw new Error("'stats socket' supports UNIX socket paths only");
        const s: StatsSocketConfig = { path, level: 'user', ...where };
        for (let i = 3; i < w.length; i += 2) {
          const v = w[i + 1];
          if (w[i] === 'mode') s.mode = parseInt(v ?? '', 8);
          else if (w[i] === 'level') {
            if (v !== 'user' && v !== 'operator' && v !== 'admin') throw new Error(`'level' expects user, operator or admin`);
            s.level = v;
          } else if (w[i] === 'expose-fd' && v === 'listeners') {
            warnings.push({
              ...where,
              keyword: 'stats socket',
              message: "'expose-fd listeners' is not needed: listening sockets are kept across reloads",
            });
            continue;
          } else throw new Error(`unsupported 'stats socket' option '${w[i]}'`);
          if (v === undefined || (w[i] === 'mode' && Number.isNaN(s.mode))) throw new Error(`'${w[i]}' expects a value`);
        }
        g.statsSockets.push(s);
        return;
      }
      if (w[1] === 'timeout') {
        g.statsTimeout = parseTime(w[2] ?? '');
        return;
      }
      throw new Error(`unsupported 'stats' keyword '${w[1] ?? ''}' in global section`);
    }
    case 'chroot':
    case 'quiet':
    case 'tune.bufsize':
    case 'spread-checks':
      throw new Error(`'${kw}' is not supported by this proxy`);
    default:
      void warnings;
      throw new Error('unknown keyword in global section');
  }
}
