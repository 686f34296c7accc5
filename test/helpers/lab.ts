// The lab for end-to-end tests: ensureLab() brings the lab up when it is not (and then takes it down
// again in release(), once no other test process uses it), and gives the inventory plus ways to run
// commands in the controller namespace and on the hosts.
//
//   import { ensureLab, labUnavailable } from '../../helpers/lab.ts';
//   test('...', async (t) => {
//     if (!prerequisites(t, labUnavailable())) return;
//     const lab = await ensureLab();
//     t.after(() => lab.release());
//     const r = await lab.exec(['node', 'bin/hasetup.js', 'apply', lab.inventory]);
//     const s = await lab.ssh('web01', 'systemctl is-active apache2');
//   });
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALL_HOSTS, labConfig, type LabConfig, type LabHost } from '../../cli/lab/config.ts';
import { ctlRun, labDownIf, labSsh, labUnsupported, labUp, stateHosts } from '../../cli/lab/lab.ts';
import { processStartTime, type RunResult } from '../../cli/lab/proc.ts';
import { commandUnavailable, rootUnavailable } from './env.ts';

export type { RunResult };

export interface Lab {
  /** Absolute path of the lab's inventory. */
  inventory: string;
  hosts: LabHost[];
  config: LabConfig;
  /** True when this call brought the lab up. */
  broughtUp: boolean;
  /** Runs a command (argv) in the controller namespace ctl, where the hosts are reachable. */
  exec(cmd: string[], opts?: { input?: string; timeoutMs?: number }): Promise<RunResult>;
  /** Runs a shell command on a lab host (by name) as root over SSH, from ctl. */
  ssh(host: string, cmd: string, timeoutMs?: number): Promise<RunResult>;
  /**
   * Done with the lab: takes it down when a test helper brought it up and no other live test process
   * still uses it; otherwise leaves it as it is. Safe to call more than once.
   */
  release(): Promise<void>;
}

/** Why the lab cannot run here (for prerequisites()), or null. */
export function labUnavailable(): string | null {
  return rootUnavailable() ?? labUnsupported() ?? commandUnavailable('nsenter', 'apt-get');
}

let calls = 0;
/** One registration per ensureLab call: PID, its start time, a counter. */
const me = (): string => `${process.pid}-${processStartTime(process.pid) ?? ''}-${++calls}`;

function usersDir(cfg: LabConfig): string {
  return join(cfg.stateDir, 'users');
}

/** The test processes registered as users of the lab that are still alive. */
function liveUsers(cfg: LabConfig): string[] {
  const dir = usersDir(cfg);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((u) => {
    const [pid, start] = u.split('-');
    const alive = processStartTime(Number(pid)) === start;
    if (!alive) rmSync(join(dir, u), { force: true });
    return alive;
  });
}

export interface EnsureLabOptions {
  /** With db02 (10.213.0.32), the MySQL replica; added to a running lab that lacks it. */
  replica?: boolean;
  /** Web nodes (default 2); added to a running lab that has fewer. */
  webs?: number;
  /** Lab name (HASETUP_LAB_NAME, default "lab"): another name gives a separate lab. */
  name?: string;
  /**
   * Where the inventory is written (default: lab/inventory.yaml in the checkout for the lab "lab", else inventory.yaml in
   * the lab's state directory).
   */
  inventory?: string;
}

export async function ensureLab(opts: EnsureLabOptions = {}): Promise<Lab> {
  const why = labUnavailable();
  if (why) throw new Error(`the lab cannot run here: ${why}`);
  const cfg = labConfig({ name: opts.name });
  // registered before `up`, so that another test process releasing the lab meanwhile keeps it up
  const user = join(usersDir(cfg), me());
  mkdirSync(usersDir(cfg), { recursive: true });
  writeFileSync(user, '');
  let up;
  try {
    up = await labUp(cfg, { replica: opts.replica, webs: opts.webs, inventory: opts.inventory, helper: true });
  } catch (err) {
    rmSync(user, { force: true });
    throw err;
  }
  const hosts = stateHosts(up.state);
  let released = false;
  return {
    inventory: up.inventory,
    hosts,
    config: cfg,
    broughtUp: up.started,
    exec: (cmd, o = {}) => ctlRun(cfg, cmd[0], cmd.slice(1), { timeoutMs: 600_000, ...o }),
    ssh: (host, cmd, timeoutMs) => {
      const h = ALL_HOSTS.find((x) => x.name === host);
      if (!h) return Promise.reject(new Error(`no lab host ${host}`));
      return labSsh(cfg, h.address, cmd, timeoutMs);
    },
    async release() {
      if (released) return;
      released = true;
      rmSync(user, { force: true });
      await labDownIf(cfg, (state) => state.helperOwned && liveUsers(cfg).length === 0);
    },
  };
}

/**
 * For a test file that runs on the lab and its own inventory (state dir/inventory.yaml): the lab up
 * before the file's tests (unless `skip` says why it cannot be), released after them. Returns the
 * getter a test uses (it fails the test when the lab is not up).
 */
export function labForFile(skip: string | null): () => Lab {
  let lab: Lab | undefined;
  before(async () => {
    if (skip) return;
    lab = await ensureLab({ inventory: join(labConfig().stateDir, 'inventory.yaml') });
  });
  after(async () => {
    await lab?.release();
  });
  return () => {
    assert.ok(lab, 'the lab is up');
    return lab;
  };
}
