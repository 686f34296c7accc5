// hasetup-proxy: a load-balancing proxy that reads haproxy.cfg.
//   hasetup-proxy -f haproxy.cfg [-f more.cfg] [-c] [-p pidfile] [-q]
// Runs in the foreground. SIGHUP/SIGUSR2 reload (listeners and health states kept), SIGTERM/SIGINT drain and exit.
// With nbthread/nbproc > 1 (default: one per core) a primary process runs the health checks, the stats
// socket and the statistics, and worker processes share the listening sockets and carry the traffic.
import cluster from 'node:cluster';
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { readFileSync, writeFileSync, unlinkSync } from 'node:fs';
import { ConfigError, formatAlert, loadConfigFiles, workerCpus, type ParsedConfig } from './config.ts';
import { Engine, listenKeys, type ControlLink, type HealthUpdate, type LocalResponse, type Snapshot, type StatsKind } from './engine.ts';
import { Control, type Plane } from './control.ts';
import { ReusePortOpener, reusePortAddon } from './reuseport.ts';
import { VERSION } from '../common/version.ts';
import { coalesced } from '../common/coalesce.ts';

const DRAIN_MAX = 30000; // ms a stopping process waits for in-flight requests

interface Args {
  files: string[];
  check: boolean;
  pidfile?: string;
  quiet: boolean;
}

function usage(msg?: string): never {
  if (msg) process.stderr.write(`[ALERT] ${msg}\n`);
  process.stderr.write('Usage: hasetup-proxy -f <cfgfile> [-f <cfgfile>...] [-c] [-p <pidfile>] [-q] [-v]\n');
  process.exit(1);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { files: [], check: false, quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === '-f') {
      const f = argv[++i];
      if (!f) usage("option '-f' needs a file name");
      a.files.push(f);
    } else if (x.startsWith('-f') && x.length > 2) a.files.push(x.slice(2));
    else if (x === '-c') a.check = true;
    else if (x === '-p') {
      a.pidfile = argv[++i];
      if (!a.pidfile) usage("option '-p' needs a file name");
    } else if (x === '-q') a.quiet = true;
    else if (x === '-W' || x === '-Ws' || x === '-db') continue;
    else if (x === '-v' || x === '-vv' || x === '-V') {
      process.stdout.write(`hasetup-proxy version ${VERSION} (haproxy.cfg compatible)\n`);
      process.exit(0);
    } else if (x === '-D') usage('daemon mode (-D) is not supported: run in the foreground under a service manager');
    else if (x === '--') {
      a.files.push(...argv.slice(i + 1).filter(Boolean));
      break;
    }
    else usage(`unknown option '${x}'`);
  }
  if (a.files.length === 0) usage('no configuration file given (-f)');
  return a;
}

/** uid/gid of the configured user and group (from /etc/passwd and /etc/group), or an error message. */
export function resolveIds(cfg: ParsedConfig): { uid?: number; gid?: number; user?: string; error?: string } {
  const g = cfg.global;
  let uid = g.uid;
  let gid = g.gid;
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8').split('\n').map((l) => l.split(':'));
    } catch {
      return [];
    }
  };
  if (g.user) {
    const e = read('/etc/passwd').find((x) => x[0] === g.user);
    if (!e) return { error: `cannot find user id for '${g.user}'` };
    uid = Number(e[2]);
    if (gid === undefined && !g.group) gid = Number(e[3]);
  }
  if (g.group) {
    const e = read('/etc/group').find((x) => x[0] === g.group);
    if (!e) return { error: `cannot find group id for '${g.group}'` };
    gid = Number(e[2]);
  }
  return { uid, gid, user: g.user };
}

function dropPrivileges(cfg: ParsedConfig): void {
  const ids = resolveIds(cfg);
  if (ids.error) throw new Error(ids.error);
  if (process.getuid?.() !== 0) return; // not root: nothing to drop (and nothing we could change)
  if (ids.gid !== undefined) {
    const p = process as NodeJS.Process & { initgroups?: (u: string, g: number) => void };
    if (ids.user) p.initgroups?.(ids.user, ids.gid);
    else process.setgroups?.([ids.gid]);
    process.setgid?.(ids.gid);
  }
  if (ids.uid !== undefined) process.setuid?.(ids.uid);
}

function load(files: string[], quiet: boolean): ParsedConfig {
  const cfg = loadConfigFiles(files);
  if (!quiet) for (const w of cfg.warnings) process.stderr.write(formatAlert(w, 'WARNING') + '\n');
  return cfg;
}

/**
 * This process's CPU placement: `allowed`, the CPUs it may use at start, and `place(cpus)`, which keeps its main
 * thread (its event loop) on `cpus`, or on all of `allowed` again for null. A CPU set it cannot have gives a warning
 * and leaves the placement as it was. Without the addon there is no placement.
 */
function cpuPlacement(): { allowed: number[]; place(cpus: number[] | null): void } {
  const native = reusePortAddon();
  const allowed = native ? native.cpus() : [];
  let current = allowed.join(',');
  return {
    allowed,
    place(cpus) {
      const want = cpus ?? allowed;
      if (!native || want.join(',') === current) return;
      try {
        native.pin(want);
        current = want.join(',');
      } catch (e) {
        process.stderr.write(`[WARNING] (${process.pid}) : cpu-map: cannot run on CPU ${want.join(',')}: ${(e as Error).message}\n`);
      }
    },
  };
}

// The Node flags of the bundle's #! line (runtime/proxy/build.mjs sets them at build time).
declare const __HASETUP_NODE_FLAGS__: string[] | undefined;
const NODE_FLAGS: string[] = typeof __HASETUP_NODE_FLAGS__ !== 'undefined' ? __HASETUP_NODE_FLAGS__ : [];

function workerCount(cfg: ParsedConfig): number {
  if (cfg.global.nbthread) return cfg.global.nbthread;
  const n = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, n);
}

function printAlerts(e: unknown): void {
  if (e instanceof ConfigError) {
    for (const a of e.alerts) process.stderr.write(formatAlert(a) + '\n');
    process.stderr.write(`[ALERT] Fatal errors found in configuration.\n`);
  } else process.stderr.write(`[ALERT] ${(e as Error).message}\n`);
}

function writePid(path: string | undefined): void {
  if (path) writeFileSync(path, `${process.pid}\n`);
}

function removePid(path: string | undefined): void {
  if (path)
    try {
      unlinkSync(path);
    } catch {}
}

/**
 * SIGHUP's reload: the files read again and applied; a bad configuration is refused and the running one kept.
 * `note(cfg)` ends the log line; none while `stopping()`. A reload asked for while one runs happens right after it,
 * with the newest files.
 */
function reloader(args: Args, control: Control, note: (c: ParsedConfig) => string, stopping = () => false): () => void {
  return coalesced(async () => {
    if (stopping()) return;
    try {
      const c = load(args.files, args.quiet);
      await control.reload(c);
      process.stderr.write(`[NOTICE] (${process.pid}) : configuration reloaded${note(c)}\n`);
    } catch (e) {
      printAlerts(e);
      process.stderr.write(`[WARNING] (${process.pid}) : reload failed, keeping the running configuration\n`);
    }
  });
}

// Signals that arrive while starting up (before the real handlers exist) are kept and acted on once started:
// without this, a SIGHUP during start-up would kill the process (default action).
const early = { reload: false, stop: false };
const earlyReload = () => (early.reload = true);
const earlyStop = () => (early.stop = true);
function catchEarlySignals(): void {
  process.on('SIGHUP', earlyReload);
  process.on('SIGUSR2', earlyReload);
  process.on('SIGTERM', earlyStop);
  process.on('SIGINT', earlyStop);
}
function takeSignals(reload: () => void, stop: () => void): void {
  process.off('SIGHUP', earlyReload);
  process.off('SIGUSR2', earlyReload);
  process.off('SIGTERM', earlyStop);
  process.off('SIGINT', earlyStop);
  process.on('SIGHUP', reload);
  process.on('SIGUSR2', reload);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (early.stop) stop();
  else if (early.reload) reload();
}

// ---------------------------------------------------------------- single process

async function runSingle(args: Args, cfg: ParsedConfig): Promise<void> {
  let control: Control | null = null;
  const link: ControlLink = {
    observe: (key, ok) => control?.observe(key, ok),
    render: (kind, proxy, uri) => control!.render(kind, proxy, uri),
  };
  const engine = new Engine(cfg, link);
  // only a cpu-map line places a single process (workerCpus gives null otherwise: free)
  const cpu = cpuPlacement();
  const place = (c: ParsedConfig) => cpu.place(workerCpus(c.global, 0, 1, cpu.allowed));
  place(cfg);
  const plane: Plane = {
    applyConfig: (c) => {
      place(c);
      return engine.reload(c);
    },
    applyHealth: (l) => engine.applyHealth(l),
    snapshots: async () => [engine.snapshot()],
  };
  await engine.listen();
  control = new Control(cfg, plane);
  control.start();
  dropPrivileges(cfg);
  const pidfile = args.pidfile ?? cfg.global.pidfile;
  writePid(pidfile);
  const reload = reloader(args, control, () => '');
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    control!.stop();
    await engine.drain(DRAIN_MAX);
    removePid(pidfile);
    process.exit(0);
  };
  if (!args.quiet) process.stderr.write(`[NOTICE] (${process.pid}) : hasetup-proxy ${VERSION} started (1 process)\n`);
  takeSignals(reload, () => void stop());
}

// ---------------------------------------------------------------- cluster: primary

type ToWorker =
  | { t: 'config'; cfg: ParsedConfig; health: HealthUpdate[]; id: number; cpus: number[] | null }
  | { t: 'health'; list: HealthUpdate[] }
  | { t: 'snap'; id: number }
  | { t: 'rendered'; id: number; r: LocalResponse }
  | { t: 'bound'; id: number; error?: string }
  | { t: 'drain' };
type FromWorker =
  | { t: 'ready'; id: number; error?: string }
  | { t: 'snap'; id: number; snap: Snapshot }
  | { t: 'observe'; key: string; ok: boolean }
  | { t: 'render'; id: number; kind: StatsKind; proxy: string; uri: string }
  | { t: 'bind'; id: number; host: string; port: number; backlog: number };

async function runPrimary(args: Args, cfg0: ParsedConfig): Promise<void> {
  let cfg = cfg0;
  let stopping = false;
  let control: Control | null = null;
  let seq = 0;
  const pending = new Map<number, (m: FromWorker) => void>();
  const workers = new Set<ChildProcess>();
  const retiring = new WeakSet<ChildProcess>();
  // Workers with a listening socket of their own are plain child processes (they listen on what the primary
  // hands them); without the addon they are node:cluster workers sharing the primary's sockets.
  const native = reusePortAddon();
  const opener = native ? new ReusePortOpener(native) : null;
  // the workers run with the flags of the bundle's #! line even when the primary was started as `node file`
  const execArgv = [...process.execArgv, ...NODE_FLAGS.filter((f) => !process.execArgv.some((a) => a.split('=')[0] === f.split('=')[0]))];
  // CPU placement (cpu-map, or one CPU per worker by default): each worker's slot 0..n-1 decides
  const allowed = cpuPlacement().allowed;
  const slotOf = new Map<ChildProcess, number>();
  const freeSlot = () => {
    const used = new Set(slotOf.values());
    let i = 0;
    while (used.has(i)) i++;
    return i;
  };
  const cpusOf = (w: ChildProcess, c: ParsedConfig): number[] | null => workerCpus(c.global, slotOf.get(w) ?? 0, workerCount(c), allowed);
  if (!native && cfg.global.cpuMaps.length && !args.quiet)
    process.stderr.write(`[WARNING] (${process.pid}) : cpu-map needs proxy-linux-${os.arch()}.node next to the program: the workers run on any CPU\n`);
  if (!native) {
    if (!args.quiet)
      process.stderr.write(`[WARNING] (${process.pid}) : proxy-linux-${os.arch()}.node not found next to the program: the workers share one listening socket per address (uneven spread)\n`);
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ serialization: 'advanced', silent: false, execArgv });
  }

  const send = (w: ChildProcess, m: ToWorker) => {
    if (w.connected) w.send(m);
  };
  const request = <T extends FromWorker>(w: ChildProcess, m: ToWorker & { id: number }, timeout: number): Promise<T | null> =>
    new Promise((res) => {
      const t = setTimeout(() => {
        pending.delete(m.id);
        res(null);
      }, timeout);
      pending.set(m.id, (r) => {
        clearTimeout(t);
        pending.delete(m.id);
        res(r as T);
      });
      send(w, m);
    });

  let forked = 0;
  const startWorker = (c: ParsedConfig): Promise<string | undefined> => {
    const env = { HASETUP_PROXY_WORKER: '1', HASETUP_PROXY_WORKER_INDEX: String(forked++), HASETUP_PROXY_REUSEPORT: opener ? '1' : '0' };
    const w = opener ? fork(process.argv[1], [], { env: { ...process.env, ...env }, serialization: 'advanced', execArgv }) : cluster.fork(env).process;
    workers.add(w);
    slotOf.set(w, freeSlot());
    w.on('message', (m: FromWorker) => {
      if (m.t === 'ready' || m.t === 'snap') pending.get(m.id)?.(m);
      else if (m.t === 'observe') control?.observe(m.key, m.ok);
      else if (m.t === 'bind')
        opener!.open(m.host, m.port, m.backlog).then(
          (h) => {
            // the worker holds its own copy once the message is written: the primary's goes
            const drop = () => (h as { close(): void }).close();
            if (w.connected) w.send({ t: 'bound', id: m.id } satisfies ToWorker, h as never, drop);
            else drop();
          },
          (e: Error) => send(w, { t: 'bound', id: m.id, error: e.message }),
        );
      else if (m.t === 'render')
        control!.render(m.kind, m.proxy, m.uri).then(
          (r) => send(w, { t: 'rendered', id: m.id, r }),
          () => send(w, { t: 'rendered', id: m.id, r: { status: 500, headers: [], body: Buffer.from('stats unavailable\n') } }),
        );
    });
    w.on('exit', (code, signal) => {
      workers.delete(w);
      slotOf.delete(w);
      if (stopping) {
        if (workers.size === 0) finish();
        return;
      }
      if (retiring.has(w)) return;
      process.stderr.write(`[ALERT] (${process.pid}) : worker ${w.pid} exited (${signal ?? code}), starting a new one\n`);
      setTimeout(() => {
        if (!stopping) void startWorker(cfg).then((e) => e && process.stderr.write(`[ALERT] ${e}\n`));
      }, 500);
    });
    const health = control ? control.healthUpdates() : [];
    return request<{ t: 'ready'; id: number; error?: string }>(w, { t: 'config', cfg: c, health, id: ++seq, cpus: cpusOf(w, c) }, 20000).then((r) => (r ? r.error : 'worker did not start in time'));
  };

  const plane: Plane = {
    async applyConfig(c) {
      const list = [...workers];
      const want = workerCount(c);
      const results = await Promise.all(list.map((w) => request<{ t: 'ready'; id: number; error?: string }>(w, { t: 'config', cfg: c, health: control!.healthUpdates(), id: ++seq, cpus: cpusOf(w, c) }, 20000)));
      const errs = results.map((r) => (r ? r.error : 'worker did not answer')).filter(Boolean);
      if (errs.length) throw new Error(errs.join('; '));
      cfg = c;
      opener?.keepOnly(listenKeys(c));
      for (let i = list.length; i < want; i++) {
        const e = await startWorker(c);
        if (e) throw new Error(e);
      }
      for (const w of list.slice(want)) {
        retiring.add(w);
        send(w, { t: 'drain' });
      }
    },
    applyHealth(list) {
      for (const w of workers) send(w, { t: 'health', list });
    },
    async snapshots() {
      const rs = await Promise.all([...workers].map((w) => request<{ t: 'snap'; id: number; snap: Snapshot }>(w, { t: 'snap', id: ++seq }, 2000)));
      return rs.filter((r): r is { t: 'snap'; id: number; snap: Snapshot } => !!r).map((r) => r.snap);
    },
  };

  control = new Control(cfg, plane);
  control.start(); // the stats socket answers from the start, before the workers are up
  const n = workerCount(cfg);
  const errors = (await Promise.all(Array.from({ length: n }, () => startWorker(cfg)))).filter(Boolean);
  if (errors.length) {
    stopping = true;
    process.stderr.write(`[ALERT] (${process.pid}) : ${errors[0]}\n`);
    for (const w of workers) w.kill();
    process.exit(1);
  }
  control.pushAll();
  const pidfile = args.pidfile ?? cfg.global.pidfile;
  writePid(pidfile);

  const reload = reloader(args, control, (c) => ` (${workerCount(c)} workers)`, () => stopping);
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    control?.stop();
    removePid(pidfile);
    process.exit(0);
  };
  const stop = () => {
    if (stopping) return;
    stopping = true;
    control!.stop();
    if (workers.size === 0) finish();
    for (const w of workers) send(w, { t: 'drain' });
    setTimeout(() => {
      for (const w of workers) w.kill('SIGKILL');
      finish();
    }, DRAIN_MAX + 2000).unref();
  };
  if (!args.quiet) process.stderr.write(`[NOTICE] (${process.pid}) : hasetup-proxy ${VERSION} started (${n} worker processes)\n`);
  takeSignals(reload, stop);
}

// ---------------------------------------------------------------- cluster: worker

function runWorker(): void {
  let engine: Engine | null = null;
  let seq = 0;
  const renders = new Map<number, (r: LocalResponse) => void>();
  const binds = new Map<number, (m: { error?: string }, handle: object | undefined) => void>();
  const send = (m: FromWorker) => {
    if (process.connected) process.send!(m);
  };
  const link: ControlLink = {
    observe: (key, ok) => send({ t: 'observe', key, ok }),
    render: (kind, proxy, uri) =>
      new Promise((res, rej) => {
        const id = ++seq;
        const t = setTimeout(() => {
          renders.delete(id);
          rej(new Error('timeout'));
        }, 5000);
        renders.set(id, (r) => {
          clearTimeout(t);
          renders.delete(id);
          res(r);
        });
        send({ t: 'render', id, kind, proxy, uri });
      }),
  };
  if (process.env.HASETUP_PROXY_REUSEPORT === '1')
    link.openListener = (host, port, backlog) =>
      new Promise((res, rej) => {
        const id = ++seq;
        const t = setTimeout(() => {
          binds.delete(id);
          rej(new Error(`no listening socket for ${host}:${port} from the primary`));
        }, 10000);
        binds.set(id, (m, handle) => {
          clearTimeout(t);
          binds.delete(id);
          if (handle) res(handle);
          else rej(new Error(m.error ?? `no listening socket for ${host}:${port}`));
        });
        send({ t: 'bind', id, host, port, backlog });
      });
  let dropped = false;
  let draining = false;
  const cpu = cpuPlacement();
  const drain = async () => {
    if (draining) return;
    draining = true;
    if (engine) await engine.drain(DRAIN_MAX);
    process.exit(0);
  };
  process.on('message', async (m: ToWorker, handle?: object) => {
    if (m.t === 'bound') binds.get(m.id)?.(m, handle);
    else if (m.t === 'config') {
      cpu.place(m.cpus);
      try {
        if (!engine) {
          engine = new Engine(m.cfg, link, Number(process.env.HASETUP_PROXY_WORKER_INDEX ?? 0));
          engine.applyHealth(m.health);
          await engine.listen();
        } else {
          await engine.reload(m.cfg);
          engine.applyHealth(m.health);
        }
        if (!dropped) {
          dropPrivileges(m.cfg);
          dropped = true;
        }
        send({ t: 'ready', id: m.id });
      } catch (e) {
        send({ t: 'ready', id: m.id, error: (e as Error).message });
      }
    } else if (m.t === 'health') engine?.applyHealth(m.list);
    else if (m.t === 'snap') {
      if (engine) send({ t: 'snap', id: m.id, snap: engine.snapshot() });
    } else if (m.t === 'rendered') renders.get(m.id)?.(m.r);
    else if (m.t === 'drain') void drain();
  });
  process.on('SIGTERM', drain);
  process.on('SIGINT', drain);
  process.on('SIGHUP', () => {});
  process.on('SIGUSR2', () => {});
  process.on('disconnect', () => void drain());
}

// ---------------------------------------------------------------- entry

async function main(): Promise<void> {
  if (process.env.HASETUP_PROXY_WORKER === '1' && typeof process.send === 'function') {
    runWorker();
    return;
  }
  const args = parseArgs(process.argv.slice(2));
  let cfg: ParsedConfig;
  try {
    cfg = load(args.files, args.quiet || args.check === false ? args.quiet : false);
    const ids = resolveIds(cfg);
    if (ids.error) throw new Error(ids.error);
  } catch (e) {
    printAlerts(e);
    process.exit(1);
  }
  if (args.check) {
    process.stdout.write('Configuration file is valid\n');
    process.exit(0);
  }
  catchEarlySignals();
  try {
    if (workerCount(cfg) <= 1) await runSingle(args, cfg);
    else await runPrimary(args, cfg);
  } catch (e) {
    process.stderr.write(`[ALERT] (${process.pid}) : ${(e as Error).message}\n`);
    process.exit(1);
  }
}

process.on('uncaughtException', (e) => {
  process.stderr.write(`[ALERT] (${process.pid}) : internal error: ${e.stack ?? e.message}\n`);
});

void main();
