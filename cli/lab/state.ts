// The lab's state file: every namespace, cgroup, process and directory `lab up` created, recorded as
// it goes, so that `lab down` (or the clean-up of a failed `lab up`) removes exactly those.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabConfig } from './config.ts';
import type { GroupLimits } from './limits.ts';
import { processStartTime, sleep } from './proc.ts';

export interface Launcher {
  host: string;
  pid: number;
  startTime: string;
}

export interface LabState {
  version: 1;
  name: string;
  phase: 'starting' | 'up';
  replica: boolean;
  /** Web nodes (web01..web0N); absent in a state file of an earlier version: 2. */
  webs?: number;
  /** CPU and memory limits per group; absent in a state file of an earlier version (its hosts have none). */
  limits?: GroupLimits;
  /** Network namespaces created (names under /run/netns). */
  netns: string[];
  /** Cgroup directories created (absolute paths), one per host and hierarchy. */
  cgroups: string[];
  launchers: Launcher[];
  /** Directories created for the hosts (overlay upper dirs and their work dirs). */
  dirs: string[];
  baseDir: string;
  repoDir: string;
  inventory: string;
  /** True when the test helper brought the lab up: the last test process using it takes it down. */
  helperOwned: boolean;
  startedAt: string;
}

export const statePath = (cfg: LabConfig): string => join(cfg.stateDir, 'state.json');

export function readState(cfg: LabConfig): LabState | null {
  const p = statePath(cfg);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as LabState;
  } catch (err) {
    throw new Error(
      `the lab state file ${p} is unreadable: remove the lab's namespaces (ip netns list | grep ${cfg.prefix}) by hand, then the file`,
      { cause: err },
    );
  }
}

export function writeState(cfg: LabConfig, state: LabState): void {
  mkdirSync(cfg.stateDir, { recursive: true });
  const p = statePath(cfg);
  writeFileSync(`${p}.tmp`, JSON.stringify(state, null, 2) + '\n');
  renameSync(`${p}.tmp`, p);
}

export function removeState(cfg: LabConfig): void {
  rmSync(statePath(cfg), { force: true });
}

/**
 * A lock held by a directory holding the owner's PID; a lock whose owner died is taken over.
 * Waits up to timeoutMs for another live owner to release it.
 */
export async function withLock<T>(dir: string, what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const lock = `${dir}.lock`;
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    try {
      mkdirSync(lock, { recursive: false });
      writeFileSync(join(lock, 'owner'), `${process.pid} ${processStartTime(process.pid) ?? ''}\n`);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        mkdirSync(join(lock, '..'), { recursive: true });
        continue;
      }
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner = '';
      try {
        owner = readFileSync(join(lock, 'owner'), 'utf8').trim();
      } catch {}
      const [pid, start] = owner.split(' ');
      const alive = pid ? processStartTime(Number(pid)) === (start ?? '') && start !== undefined : true;
      if (owner && !alive) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (held by PID ${pid ?? '?'}; lock ${lock})`, { cause: err });
      if (!told) {
        console.log(`lab: waiting for ${what} (another hasetup, PID ${pid ?? '?'}, holds it)`);
        told = true;
      }
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
