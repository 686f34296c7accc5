// What the proxy's process does around its engines, whether it runs one or several workers: configuration
// loading and alerts, privileges, CPU placement, the pid file, signals and the coalesced reload.
import os from 'node:os';
import { readFileSync, writeFileSync, unlinkSync } from 'node:fs';
import { ConfigError, formatAlert, loadConfigFiles, type ParsedConfig } from './config.ts';
import type { Control } from './control.ts';
import { reusePortAddon } from './reuseport.ts';
import { coalesced } from '../common/coalesce.ts';

export const DRAIN_MAX = 30000; // ms a stopping process waits for in-flight requests

export interface Args {
  files: string[];
  check: boolean;
  pidfile?: string;
  quiet: boolean;
}

/** uid/gid of the configured user and group (from /etc/passwd and /etc/group), or an error message. */
export function resolveIds(cfg: ParsedConfig): { uid?: number; gid?: number; user?: string; error?: string } {
  const g = cfg.global;
  let uid = g.uid;
  let gid = g.gid;
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8')
        .split('\n')
        .map((l) => l.split(':'));
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

export function dropPrivileges(cfg: ParsedConfig): void {
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

export function load(files: string[], quiet: boolean): ParsedConfig {
  const cfg = loadConfigFiles(files);
  if (!quiet) for (const w of cfg.warnings) process.stderr.write(formatAlert(w, 'WARNING') + '\n');
  return cfg;
}

/**
 * This process's CPU placement: `allowed`, the CPUs it may use at start, and `place(cpus)`, which keeps its main
 * thread (its event loop) on `cpus`, or on all of `allowed` again for null. A CPU set it cannot have gives a warning
 * and leaves the placement as it was. Without the addon there is no placement.
 */
export function cpuPlacement(): { allowed: number[]; place(cpus: number[] | null): void } {
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

export function workerCount(cfg: ParsedConfig): number {
  if (cfg.global.nbthread) return cfg.global.nbthread;
  const n = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, n);
}

export function printAlerts(e: unknown): void {
  if (e instanceof ConfigError) {
    for (const a of e.alerts) process.stderr.write(formatAlert(a) + '\n');
    process.stderr.write(`[ALERT] Fatal errors found in configuration.\n`);
  } else process.stderr.write(`[ALERT] ${(e as Error).message}\n`);
}

export function writePid(path: string | undefined): void {
  if (path) writeFileSync(path, `${process.pid}\n`);
}

export function removePid(path: string | undefined): void {
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
export function reloader(args: Args, control: Control, note: (c: ParsedConfig) => string, stopping = () => false): () => void {
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
export function catchEarlySignals(): void {
  process.on('SIGHUP', earlyReload);
  process.on('SIGUSR2', earlyReload);
  process.on('SIGTERM', earlyStop);
  process.on('SIGINT', earlyStop);
}
export function takeSignals(reload: () => void, stop: () => void): void {
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
