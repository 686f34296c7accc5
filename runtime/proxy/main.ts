// hasetup-proxy: a load-balancing proxy that reads haproxy.cfg.
//   hasetup-proxy -f haproxy.cfg [-f more.cfg] [-c] [-p pidfile] [-q]
// Runs in the foreground. SIGHUP/SIGUSR2 reload (listeners and health states kept), SIGTERM/SIGINT drain and exit.
// With nbthread > 1 (default: one per core) the main thread runs the health checks, the stats socket and the
// statistics, and worker threads carry the traffic over one shared balancing state (threads.ts).
import { workerCpus, type ParsedConfig } from './config.ts';
import { DataPlane } from './dataplane.ts';
import type { ControlLink } from './types.ts';
import { Control, type Plane } from './control.ts';
import { VERSION } from '../common/version.ts';
import {
  catchEarlySignals,
  cpuPlacement,
  dropPrivileges,
  load,
  printAlerts,
  reloader,
  removePid,
  resolveIds,
  takeSignals,
  writePid,
  DRAIN_MAX,
  type Args,
} from './process.ts';
import { isWorkerThread, runThreads, runWorkerThread, threadsPossible } from './threads.ts';

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
    } else usage(`unknown option '${x}'`);
  }
  if (a.files.length === 0) usage('no configuration file given (-f)');
  return a;
}

// ---------------------------------------------------------------- single process

async function runSingle(args: Args, cfg: ParsedConfig): Promise<void> {
  let control: Control | null = null;
  const link: ControlLink = {
    observe: (key, ok) => control?.observe(key, ok),
    render: (kind, proxy, uri) => control!.render(kind, proxy, uri),
  };
  const engine = new DataPlane(cfg, link);
  // only a cpu-map line places a single process (workerCpus gives null otherwise: free)
  const cpu = cpuPlacement();
  const place = (c: ParsedConfig) => cpu.place(workerCpus(c.global, 0));
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

// ---------------------------------------------------------------- entry

async function main(): Promise<void> {
  if (isWorkerThread()) {
    runWorkerThread();
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
    if (threadsPossible(cfg, args.quiet)) await runThreads(args, cfg);
    else await runSingle(args, cfg);
  } catch (e) {
    process.stderr.write(`[ALERT] (${process.pid}) : ${(e as Error).message}\n`);
    process.exit(1);
  }
}

process.on('uncaughtException', (e) => {
  process.stderr.write(`[ALERT] (${process.pid}) : internal error: ${e.stack ?? e.message}\n`);
});

void main();
