// Several traffic workers: threads of this one process, as HAProxy's are. The main thread runs the control plane
// (health checks, the stats socket, the statistics, listening sockets opened for the workers); each worker thread
// runs an engine on its own event loop, on the CPUs cpu-map gives it (by default any, as HAProxy's threads). What must
// agree across them (round robin, connections per server, maxconn, the queue, health and admin states) is in a
// SharedArrayBuffer they all see (shared.ts): one per configuration, made here and handed to every worker with the configuration.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import os from 'node:os';
import v8 from 'node:v8';
import { workerCpus, type ParsedConfig } from './config.ts';
import { DataPlane } from './dataplane.ts';
import type { ControlLink, HealthUpdate, LocalResponse, Snapshot, StatsKind } from './types.ts';
import { Control, type Plane } from './control.ts';
import { ReusePortOpener, reusePortAddon } from './reuseport.ts';
import { Doorbells, MAX_WORKERS, SharedState, forgetWorker } from './shared.ts';
import { DRAIN_MAX, cpuPlacement, dropPrivileges, reloader, removePid, takeSignals, workerCount, writePid, type Args } from './process.ts';
import { VERSION } from '../common/version.ts';

type ToWorker =
  | { t: 'config'; cfg: ParsedConfig; sab: SharedArrayBuffer; health: HealthUpdate[]; id: number; cpus: number[] | null }
  | { t: 'health'; list: HealthUpdate[] }
  | { t: 'snap'; id: number }
  | { t: 'rendered'; id: number; r: LocalResponse }
  | { t: 'bound'; id: number; fd?: number; error?: string }
  | { t: 'drain' };
type FromWorker =
  | { t: 'ready'; id: number; error?: string }
  | { t: 'snap'; id: number; snap: Snapshot }
  | { t: 'observe'; key: string; ok: boolean }
  | { t: 'render'; id: number; kind: StatsKind; proxy: string; uri: string }
  | { t: 'bind'; id: number; host: string; port: number; backlog: number };

interface WorkerData {
  hasetupProxyWorker: true;
  bells: SharedArrayBuffer;
  slot: number;
  workers: number;
}

// The Node flags of the bundle's #! line (runtime/proxy/build.mjs sets them at build time).
declare const __HASETUP_NODE_FLAGS__: string[] | undefined;
const NODE_FLAGS: string[] = typeof __HASETUP_NODE_FLAGS__ !== 'undefined' ? __HASETUP_NODE_FLAGS__ : [];

/** Whether this thread is a traffic worker started by runThreads(). */
export function isWorkerThread(): boolean {
  return !isMainThread && (workerData as WorkerData | null)?.hasetupProxyWorker === true;
}

/** Whether several workers can run: each needs a listening socket of its own (the addon). */
export function threadsPossible(cfg: ParsedConfig, quiet: boolean): boolean {
  if (workerCount(cfg) <= 1) return false;
  if (reusePortAddon()) return true;
  if (!quiet)
    process.stderr.write(
      `[WARNING] (${process.pid}) : proxy-linux-${os.arch()}.node not found next to the program: one worker carries all the traffic\n`,
    );
  return false;
}

const ADMIN_CODE = { ready: 0, drain: 1, maint: 2 } as const;

/** A configuration's shared state with the health states in `health` (the others: as configured). */
function sharedFor(cfg: ParsedConfig, health: HealthUpdate[]): SharedState {
  const st = new SharedState(cfg);
  const known = new Map(health.map((h) => [h.key, h]));
  for (const p of cfg.proxies)
    for (const s of p.servers) {
      const key = `${p.name}/${s.name}`;
      const h = known.get(key);
      st.setHealth(key, h ? h.up : true, ADMIN_CODE[h ? h.admin : s.disabled ? 'maint' : 'ready'], h ? h.since : 0);
    }
  return st;
}

export async function runThreads(args: Args, cfg0: ParsedConfig): Promise<void> {
  let cfg = cfg0;
  let stopping = false;
  let control: Control | null = null;
  let seq = 0;
  const pending = new Map<number, (m: FromWorker) => void>();
  const workers = new Map<Worker, number>(); // worker -> its slot (CPU placement, doorbell)
  const retiring = new WeakSet<Worker>();
  const opener = new ReusePortOpener(reusePortAddon()!);
  const bells = Doorbells.create();
  let shared = sharedFor(cfg, []);
  // V8's flags are the process's: the #! line's apply to the workers' isolates even when started as `node file`
  const missing = NODE_FLAGS.filter((f) => !process.execArgv.some((a) => a.split('=')[0] === f.split('=')[0]));
  if (missing.length) v8.setFlagsFromString(missing.join(' '));

  const send = (w: Worker, m: ToWorker) => w.postMessage(m);
  const request = <T extends FromWorker>(w: Worker, m: ToWorker & { id: number }, timeout: number): Promise<T | null> =>
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
  const freeSlot = () => {
    const used = new Set(workers.values());
    let i = 0;
    while (used.has(i)) i++;
    return i;
  };
  const cpusOf = (slot: number, c: ParsedConfig) => workerCpus(c.global, slot);
  const configure = (w: Worker, c: ParsedConfig) =>
    request<{ t: 'ready'; id: number; error?: string }>(
      w,
      { t: 'config', cfg: c, sab: shared.sab, health: control ? control.healthUpdates() : [], id: ++seq, cpus: cpusOf(workers.get(w)!, c) },
      20000,
    ).then((r) => (r ? r.error : 'worker did not answer in time'));

  const startWorker = (c: ParsedConfig, slot = freeSlot()): Promise<string | undefined> => {
    const data: WorkerData = { hasetupProxyWorker: true, bells, slot, workers: MAX_WORKERS };
    const w = new Worker(typeof __filename === 'string' ? __filename : process.argv[1], { workerData: data, stdout: false, stderr: false });
    workers.set(w, slot);
    w.on('message', (m: FromWorker) => {
      if (m.t === 'ready' || m.t === 'snap') pending.get(m.id)?.(m);
      else if (m.t === 'observe') control?.observe(m.key, m.ok);
      else if (m.t === 'bind')
        opener.open(m.host, m.port, m.backlog).then(
          (fd) => send(w, { t: 'bound', id: m.id, fd }),
          (e: Error) => send(w, { t: 'bound', id: m.id, error: e.message }),
        );
      else if (m.t === 'render')
        control!.render(m.kind, m.proxy, m.uri).then(
          (r) => send(w, { t: 'rendered', id: m.id, r }),
          () => send(w, { t: 'rendered', id: m.id, r: { status: 500, headers: [], body: Buffer.from('stats unavailable\n') } }),
        );
    });
    w.on('error', (e) => process.stderr.write(`[ALERT] (${process.pid}) : worker ${slot + 1}: ${e.stack ?? e.message}\n`));
    w.on('exit', (code) => {
      workers.delete(w);
      forgetWorker(shared, slot);
      if (stopping) {
        if (workers.size === 0) finish();
        return;
      }
      if (retiring.has(w)) return;
      process.stderr.write(`[ALERT] (${process.pid}) : worker ${slot + 1} exited (${code}), starting a new one\n`);
      setTimeout(() => {
        if (!stopping) void startWorker(cfg, slot).then((e) => e && process.stderr.write(`[ALERT] ${e}\n`));
      }, 500);
    });
    return configure(w, c);
  };

  const plane: Plane = {
    async applyConfig(c) {
      const list = [...workers.keys()];
      const want = workerCount(c);
      const prev = shared;
      shared = sharedFor(c, control!.healthUpdates());
      const errs = (await Promise.all(list.map((w) => configure(w, c)))).filter(Boolean);
      if (errs.length) {
        shared = prev;
        throw new Error(errs.join('; '));
      }
      cfg = c;
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
      // seen at once by every worker; the message makes them act on it (queued requests, idle connections)
      for (const h of list) shared.setHealth(h.key, h.up, ADMIN_CODE[h.admin], h.since);
      for (const w of workers.keys()) send(w, { t: 'health', list });
    },
    async snapshots() {
      const rs = await Promise.all(
        [...workers.keys()].map((w) => request<{ t: 'snap'; id: number; snap: Snapshot }>(w, { t: 'snap', id: ++seq }, 2000)),
      );
      return rs.filter((r): r is { t: 'snap'; id: number; snap: Snapshot } => !!r).map((r) => r.snap);
    },
  };

  control = new Control(cfg, plane);
  control.start(); // the stats socket answers from the start, before the workers are up
  const n = workerCount(cfg);
  const errors = (await Promise.all(Array.from({ length: n }, (_, i) => startWorker(cfg, i)))).filter(Boolean);
  if (errors.length) {
    stopping = true;
    process.stderr.write(`[ALERT] (${process.pid}) : ${errors[0]}\n`);
    process.exit(1);
  }
  control.pushAll();
  // every listener is open: the whole process (its threads with it) leaves root now, as HAProxy does
  dropPrivileges(cfg);
  const pidfile = args.pidfile ?? cfg.global.pidfile;
  writePid(pidfile);

  const reload = reloader(
    args,
    control,
    (c) => ` (${workerCount(c)} workers)`,
    () => stopping,
  );
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
    for (const w of workers.keys()) send(w, { t: 'drain' });
    setTimeout(() => {
      for (const w of workers.keys()) void w.terminate();
      finish();
    }, DRAIN_MAX + 2000).unref();
  };
  if (!args.quiet) process.stderr.write(`[NOTICE] (${process.pid}) : hasetup-proxy ${VERSION} started (${n} worker threads)\n`);
  takeSignals(reload, stop);
}

/** A worker thread: one engine, configured, fed and drained by the main thread. */
export function runWorkerThread(): void {
  const data = workerData as WorkerData;
  const port = parentPort!;
  let engine: DataPlane | null = null;
  let seq = 0;
  const renders = new Map<number, (r: LocalResponse) => void>();
  const binds = new Map<number, (m: { fd?: number; error?: string }) => void>();
  const send = (m: FromWorker) => port.postMessage(m);
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
    openListener: (host, port, backlog) =>
      new Promise((res, rej) => {
        const id = ++seq;
        const t = setTimeout(() => {
          binds.delete(id);
          rej(new Error(`no listening socket for ${host}:${port} from the main thread`));
        }, 10000);
        binds.set(id, (m) => {
          clearTimeout(t);
          binds.delete(id);
          if (m.fd !== undefined) res({ fd: m.fd });
          else rej(new Error(m.error ?? `no listening socket for ${host}:${port}`));
        });
        send({ t: 'bind', id, host, port, backlog });
      }),
  };
  const cpu = cpuPlacement();
  try {
    reusePortAddon()?.nameThread(`proxy-worker-${data.slot + 1}`);
  } catch {}
  let draining = false;
  const drain = async () => {
    if (draining) return;
    draining = true;
    if (engine) await engine.drain(DRAIN_MAX);
    process.exit(0);
  };
  port.on('message', async (m: ToWorker) => {
    if (m.t === 'bound') binds.get(m.id)?.(m);
    else if (m.t === 'config') {
      cpu.place(m.cpus);
      try {
        if (!engine) {
          engine = new DataPlane(m.cfg, link, { sab: m.sab, bells: data.bells, worker: data.slot, workers: data.workers });
          engine.applyHealth(m.health);
          await engine.listen();
        } else {
          await engine.reload(m.cfg, m.sab);
          engine.applyHealth(m.health);
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
}
