// `hasetup lab up | down | status | ssh | exec`: the cluster's hosts as systemd containers on this
// Linux machine, on a private network reached from the lab's controller namespace "ctl".
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync, rmSync } from 'node:fs';
import {
  ALL_HOSTS,
  CTL_ADDRESS,
  DEFAULT_WEBS,
  defaultInventoryPath,
  hostsFor,
  labConfig,
  LabError,
  type LabConfig,
  type LabHost,
  type LabOptions,
} from './config.ts';
import { cacheKeys, ensureBaseImage, ensureRepo, machineAptSources, pruneCache } from './image.ts';
import {
  cgroupDirs,
  cgroupPids,
  consoleLog,
  ensureLabKey,
  hostDir,
  keyPath,
  knownHostsPath,
  launchHost,
  prepareUpper,
  sshArgs,
  sshProbeScript,
  stopHost,
} from './hosts.ts';
import { writeLabInventory } from './inventory.ts';
import { applyLimits, DEFAULT_LIMITS, formatLimits, mergeLimits, readLimits, type GroupLimits, type HostLimits } from './limits.ts';
import type { Group } from '../../inventory/types.ts';
import { bridgeNs, createBridge, createCtl, createNode, ctlNs, deleteNs, hostNs, netnsExists, netnsPath } from './net.ts';
import { log, run, sameProcessAlive, type RunResult } from './proc.ts';
import { readState, removeState, withLock, writeState, type LabState } from './state.ts';
import { ensureHostTools } from './tools.ts';

export { labConfig, LabError, type LabConfig, type LabOptions };

/** Why the lab cannot run on this machine, or null. */
export function labUnsupported(): string | null {
  if (process.platform !== 'linux') return 'the lab needs Linux (network namespaces, systemd-nspawn)';
  if (process.getuid?.() !== 0) return 'the lab needs root (network namespaces, cgroups, systemd-nspawn)';
  return null;
}

function requireSupported(): void {
  const why = labUnsupported();
  if (why) throw new LabError(why);
}

const SSH_WAIT_MS = 120_000;
const STOP_GRACE_MS = 10_000;

/** True when every namespace and launcher the state records is still there. */
export function labRunning(state: LabState): boolean {
  return (
    state.phase === 'up' &&
    state.netns.every(netnsExists) &&
    state.launchers.length > 0 &&
    state.launchers.every((l) => sameProcessAlive(l.pid, l.startTime))
  );
}

export const stateHosts = (state: LabState): LabHost[] => hostsFor({ replica: state.replica, webs: state.webs ?? DEFAULT_WEBS });

/** The limits a lab's hosts get (a lab recorded before limits existed: the defaults for hosts added to it). */
export const stateLimits = (state: LabState): GroupLimits => state.limits ?? DEFAULT_LIMITS;

/** Runs a command in the lab's controller namespace, output captured. */
export function ctlRun(cfg: LabConfig, cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return run('nsenter', [`--net=${netnsPath(ctlNs(cfg))}`, '--', cmd, ...args], opts);
}

/** Waits (up to deadlineMs) for sshd on each address, probing from ctl; address → answered. */
export async function probeSsh(cfg: LabConfig, addresses: string[], deadlineMs: number): Promise<Record<string, boolean>> {
  const r = await ctlRun(cfg, process.execPath, ['-e', sshProbeScript, String(deadlineMs), ...addresses], {
    timeoutMs: deadlineMs + 15_000,
  });
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, boolean>;
  } catch {
    return Object.fromEntries(addresses.map((a) => [a, false]));
  }
}

/** Runs a shell command on a lab host over SSH (from ctl), output captured. */
export function labSsh(cfg: LabConfig, address: string, command: string, timeoutMs = 300_000): Promise<RunResult> {
  return ctlRun(cfg, 'ssh', [...sshArgs(cfg, address), command], { timeoutMs });
}

function tail(file: string, lines = 12): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no output)';
  }
}

/** Creates, boots and checks hosts, recording every resource in the state as it goes. */
async function startHosts(cfg: LabConfig, state: LabState, hosts: LabHost[], all: LabHost[], check: () => void): Promise<void> {
  const save = () => writeState(cfg, state);
  const record = (ns: string) => {
    state.netns.push(ns);
    save();
  };
  const key = await ensureLabKey(cfg);
  const pub = readFileSync(`${key}.pub`, 'utf8');
  // one host after the other: namespace, overlay, launch (the boots overlap)
  for (const h of hosts) {
    check();
    await createNode(cfg, hostNs(cfg, h.name), h.name, h.address, record);
    rmSync(hostDir(cfg, h.name), { recursive: true, force: true });
    state.dirs.push(hostDir(cfg, h.name));
    save();
    appendFileSync(knownHostsPath(cfg), (await prepareUpper(cfg, h, all, pub)) + '\n');
    state.cgroups.push(...cgroupDirs(cfg, h.name));
    save();
    state.launchers.push(launchHost(cfg, h, state.baseDir, state.repoDir, stateLimits(state)[h.group]));
    save();
  }
  // sshd answering on every new host, or a launcher that died, or the deadline
  const deadline = Date.now() + SSH_WAIT_MS;
  let pending = hosts.map((h) => h.address);
  while (pending.length) {
    check();
    for (const h of hosts) {
      const l = state.launchers.find((x) => x.host === h.name);
      if (l && !sameProcessAlive(l.pid, l.startTime)) {
        throw new Error(`${h.name} stopped while booting; its console (${consoleLog(cfg, h.name)}):\n${tail(consoleLog(cfg, h.name))}`);
      }
    }
    if (Date.now() > deadline) {
      const names = hosts.filter((h) => pending.includes(h.address)).map((h) => h.name);
      throw new Error(
        `sshd did not answer within ${SSH_WAIT_MS / 1000} s on ${names.join(', ')}; console of ${names[0]}:\n${tail(consoleLog(cfg, names[0]))}`,
      );
    }
    const answered = await probeSsh(cfg, pending, 5_000);
    pending = pending.filter((a) => !answered[a]);
  }
  // again now that the containers have their own root cgroup (cgroup v2: nspawn's "payload")
  for (const h of hosts) applyLimits(cgroupDirs(cfg, h.name), stateLimits(state)[h.group]);
  // a real login on each (key and host key both checked), and apt's lists from the local repository
  const checks = await Promise.all(hosts.map((h) => labSsh(cfg, h.address, 'apt-get -qq update', 120_000)));
  checks.forEach((r, i) => {
    if (r.code !== 0)
      throw new Error(
        `ssh root@${hosts[i].address} (${hosts[i].name}) 'apt-get update' failed (${r.code}): ${(r.stderr || r.stdout).trim()}`,
      );
  });
}

/** Stops and removes everything the state records; keeps the state file if anything resisted. */
export async function teardown(cfg: LabConfig, state: LabState, graceMs = STOP_GRACE_MS): Promise<void> {
  const errors: string[] = [];
  const hostsWithCgroups = new Set([...state.launchers.map((l) => l.host), ...ALL_HOSTS.map((h) => h.name)]);
  await Promise.all(
    [...hostsWithCgroups].map(async (host) => {
      const cgs = state.cgroups.filter((cg) => cg.endsWith(`/${cfg.prefix}${host}`));
      const launcher = state.launchers.find((l) => l.host === host);
      if (!launcher && cgs.length === 0) return;
      try {
        await stopHost(launcher, cgs, graceMs);
      } catch (err) {
        errors.push(`${host}: ${(err as Error).message}`);
      }
    }),
  );
  for (const ns of [...state.netns].reverse()) {
    try {
      await deleteNs(ns);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (errors.length) {
    writeState(cfg, state);
    throw new LabError(`the lab could not be removed completely (run \`hasetup lab down\` again):\n${errors.join('\n')}`);
  }
  for (const d of state.dirs) rmSync(d, { recursive: true, force: true });
  rmSync(knownHostsPath(cfg), { force: true });
  rmSync(`${cfg.stateDir}/hosts`, { recursive: true, force: true });
  removeState(cfg);
}

export interface UpOptions {
  inventory?: string;
  replica?: boolean;
  /** Web nodes (default 2): a running lab with fewer gets the missing ones. */
  webs?: number;
  /** The engine the written inventory names (default: none, i.e. the inventory's default, bundled). */
  runtime?: 'bundled' | 'haproxy';
  /** Set by the test helper: it then takes the lab down when its last user is done. */
  helper?: boolean;
  /** CPU and memory limits per group over the defaults (DEFAULT_LIMITS); on a running lab, applied to its hosts at once. */
  limits?: Partial<Record<Group, Partial<HostLimits>>>;
}

export interface UpResult {
  inventory: string;
  /** False when the lab was already up (nothing started, except hosts that were asked for: the replica, more web nodes). */
  started: boolean;
  state: LabState;
}

export async function labUp(cfg: LabConfig, opts: UpOptions = {}): Promise<UpResult> {
  requireSupported();
  const inventoryPath = opts.inventory ?? defaultInventoryPath(cfg);
  let aborted: string | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    aborted = sig;
    log(`${sig}: stopping after the current step and cleaning up`);
  };
  const check = () => {
    if (aborted) throw new LabError(`interrupted by ${aborted}`, 130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await withLock(`${cfg.stateDir}/lab`, `lab "${cfg.name}"`, 30 * 60_000, async () => {
      const existing = readState(cfg);
      if (existing && labRunning(existing)) {
        if (opts.limits) setLimits(cfg, existing, mergeLimits(stateLimits(existing), opts.limits));
        const shape = { replica: existing.replica || !!opts.replica, webs: Math.max(existing.webs ?? DEFAULT_WEBS, opts.webs ?? 0) };
        const all = hostsFor(shape);
        const have = new Set(stateHosts(existing).map((h) => h.name));
        const more = all.filter((h) => !have.has(h.name));
        if (more.length) {
          const names = more.map((h) => h.name);
          log(`lab "${cfg.name}" is up: adding ${names.join(', ')}`);
          try {
            await startHosts(cfg, existing, more, all, check);
          } catch (err) {
            // take back only what this step started
            const mine = (x: string) =>
              names.some((n) => x === hostNs(cfg, n) || x === hostDir(cfg, n) || x.endsWith(`/${cfg.prefix}${n}`));
            for (const n of names)
              await stopHost(
                existing.launchers.find((l) => l.host === n),
                existing.cgroups.filter((c) => c.endsWith(`/${cfg.prefix}${n}`)),
                STOP_GRACE_MS,
              ).catch(() => {});
            for (const ns of existing.netns.filter(mine)) await deleteNs(ns).catch(() => {});
            for (const d of existing.dirs.filter(mine)) rmSync(d, { recursive: true, force: true });
            existing.netns = existing.netns.filter((n) => !mine(n));
            existing.cgroups = existing.cgroups.filter((c) => !mine(c));
            existing.launchers = existing.launchers.filter((l) => !names.includes(l.host));
            existing.dirs = existing.dirs.filter((d) => !mine(d));
            writeState(cfg, existing);
            throw err;
          }
          existing.replica = shape.replica;
          existing.webs = shape.webs;
          existing.inventory = writeLabInventory(inventoryPath, all, keyPath(cfg), knownHostsPath(cfg), { runtime: opts.runtime });
          writeState(cfg, existing);
          log(`${names.join(', ')} up; inventory rewritten: ${existing.inventory}`);
          return { inventory: existing.inventory, started: false, state: existing };
        }
        const inventory = writeLabInventory(inventoryPath, stateHosts(existing), keyPath(cfg), knownHostsPath(cfg), {
          runtime: opts.runtime,
        });
        log(
          `lab "${cfg.name}" is already up (${stateHosts(existing).length} hosts since ${existing.startedAt}); no host to start. Inventory: ${inventory}`,
        );
        return { inventory, started: false, state: existing };
      }
      if (existing) {
        log(`lab "${cfg.name}" is recorded but no longer running: removing what is left of it`);
        await teardown(cfg, existing);
      }
      const t0 = Date.now();
      let baseDir: string;
      let repoDir: string;
      try {
        await ensureHostTools();
        check();
        const sources = machineAptSources();
        const keys = cacheKeys(sources);
        baseDir = await ensureBaseImage(cfg, sources, keys);
        check();
        repoDir = await ensureRepo(cfg, sources, keys, baseDir);
        pruneCache(cfg, keys);
        check();
      } catch (err) {
        if (err instanceof LabError) throw err;
        throw new LabError(`lab up failed while preparing the image: ${(err as Error).message}`, 1, { cause: err });
      }
      const hosts = hostsFor({ replica: !!opts.replica, webs: opts.webs });
      const state: LabState = {
        version: 1,
        name: cfg.name,
        phase: 'starting',
        replica: !!opts.replica,
        webs: opts.webs ?? DEFAULT_WEBS,
        limits: mergeLimits(DEFAULT_LIMITS, opts.limits),
        netns: [],
        cgroups: [],
        launchers: [],
        dirs: [],
        baseDir,
        repoDir,
        inventory: '',
        helperOwned: !!opts.helper,
        startedAt: new Date().toISOString(),
      };
      writeState(cfg, state);
      try {
        const t1 = Date.now();
        rmSync(knownHostsPath(cfg), { force: true });
        const record = (ns: string) => {
          state.netns.push(ns);
          writeState(cfg, state);
        };
        await createBridge(cfg, record);
        await createCtl(cfg, record);
        await startHosts(cfg, state, hosts, hosts, check);
        state.inventory = writeLabInventory(inventoryPath, hosts, keyPath(cfg), knownHostsPath(cfg), { runtime: opts.runtime });
        state.phase = 'up';
        writeState(cfg, state);
        for (const g of ['lb', 'web', 'db'] as const) log(`${g} hosts limited to ${formatLimits(state.limits![g])}`);
        log(
          `${hosts.length} hosts up in ${((Date.now() - t1) / 1000).toFixed(1)} s (${((Date.now() - t0) / 1000).toFixed(1)} s in all): ` +
            hosts.map((h) => `${h.name} ${h.address}`).join(', '),
        );
        log(`inventory: ${state.inventory}`);
        log(`controller namespace ctl (${CTL_ADDRESS}): hasetup lab exec -- hasetup apply ${state.inventory}`);
        return { inventory: state.inventory, started: true, state };
      } catch (err) {
        log(`lab up failed: cleaning up what it started`);
        try {
          // hosts still booting ignore the polite shutdown: no grace for them
          await teardown(cfg, state, 500);
        } catch (cleanupErr) {
          log((cleanupErr as Error).message);
        }
        if (err instanceof LabError) throw err;
        throw new LabError(`lab up failed: ${(err as Error).message}`, 1, { cause: err });
      }
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Sets new limits on a running lab's hosts (at once: the kernel applies them live) and records them. */
function setLimits(cfg: LabConfig, state: LabState, limits: GroupLimits): void {
  const before = stateLimits(state);
  for (const g of ['lb', 'web', 'db'] as const) {
    if (before[g].cpu === limits[g].cpu && before[g].memory === limits[g].memory && state.limits) continue;
    for (const h of stateHosts(state).filter((x) => x.group === g)) applyLimits(cgroupDirs(cfg, h.name), limits[g]);
    log(`${g} hosts now limited to ${formatLimits(limits[g])}`);
  }
  state.limits = limits;
  writeState(cfg, state);
}

/** Takes the lab down; false when it was not up. */
export async function labDown(cfg: LabConfig): Promise<boolean> {
  requireSupported();
  return withLock(`${cfg.stateDir}/lab`, `lab "${cfg.name}"`, 30 * 60_000, async () => {
    const state = readState(cfg);
    if (!state) {
      log(`lab "${cfg.name}" is not up`);
      return false;
    }
    const t0 = Date.now();
    await teardown(cfg, state);
    log(`lab "${cfg.name}" is down (${((Date.now() - t0) / 1000).toFixed(1)} s): its hosts, namespaces, cgroups and overlays are gone`);
    return true;
  });
}

/** Memory (proportional set size, bytes) of every process of a host. */
export function hostMemory(cfg: LabConfig, host: string): number {
  let total = 0;
  for (const pid of cgroupDirs(cfg, host).slice(0, 1).flatMap(cgroupPids)) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      if (m) total += Number(m[1]) * 1024;
    } catch {}
  }
  return total;
}

export interface HostStatus {
  name: string;
  address: string;
  running: boolean;
  ssh: boolean;
  memoryBytes: number;
  /** The limits in force on the host's cgroups, read from the kernel (null: none; undefined: unreadable). */
  limits: { cpu?: number | null; memory?: number | null };
}

export interface LabStatus {
  up: boolean;
  recorded: boolean;
  inventory?: string;
  hosts: HostStatus[];
  /** The limits recorded per group (what `lab up` set). */
  limits?: GroupLimits;
}

export async function labStatus(cfg: LabConfig): Promise<LabStatus> {
  requireSupported();
  const state = readState(cfg);
  if (!state) return { up: false, recorded: false, hosts: [] };
  const hosts = stateHosts(state);
  const ctlOk = netnsExists(ctlNs(cfg)) && netnsExists(bridgeNs(cfg));
  const answered = ctlOk
    ? await probeSsh(
        cfg,
        hosts.map((h) => h.address),
        1_500,
      )
    : {};
  const rows = hosts.map((h) => {
    const l = state.launchers.find((x) => x.host === h.name);
    return {
      name: h.name,
      address: h.address,
      running: !!l && sameProcessAlive(l.pid, l.startTime),
      ssh: !!answered[h.address],
      memoryBytes: hostMemory(cfg, h.name),
      limits: readLimits(cgroupDirs(cfg, h.name)),
    };
  });
  return {
    up: labRunning(state) && rows.every((r) => r.ssh),
    recorded: true,
    inventory: state.inventory,
    hosts: rows,
    limits: stateLimits(state),
  };
}

/** The address of a lab host by name (or the address itself). */
export function hostAddress(cfg: LabConfig, name: string): string {
  const state = readState(cfg);
  if (!state || !labRunning(state)) throw new LabError(`lab "${cfg.name}" is not up: run \`hasetup lab up\` first`);
  const h = stateHosts(state).find((x) => x.name === name || x.address === name);
  if (!h)
    throw new LabError(
      `no lab host "${name}"; the hosts are ${stateHosts(state)
        .map((x) => x.name)
        .join(', ')}`,
    );
  return h.address;
}

/** Runs a command in ctl with the terminal attached; resolves to its exit code. */
export function ctlInteractive(cfg: LabConfig, cmd: string[]): Promise<number> {
  const state = readState(cfg);
  if (!state || !labRunning(state) || !netnsExists(ctlNs(cfg))) {
    return Promise.reject(new LabError(`lab "${cfg.name}" is not up: run \`hasetup lab up\` first`));
  }
  return new Promise((resolvePromise, reject) => {
    const child = spawn('nsenter', [`--net=${netnsPath(ctlNs(cfg))}`, '--', ...cmd], {
      stdio: 'inherit',
      env: { ...process.env, HASETUP_LAB_NAME: cfg.name },
    });
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    process.on('SIGTERM', forward);
    child.on('error', (err) => reject(new LabError(`cannot run ${cmd[0]}: ${err.message}`)));
    child.on('close', (code, signal) => {
      process.off('SIGTERM', forward);
      resolvePromise(code ?? (signal ? 128 : 1));
    });
  });
}

/** `lab ssh HOST [CMD...]`: an SSH session (or one command) on a host, from ctl. */
export function labSshInteractive(cfg: LabConfig, host: string, cmd: string[]): Promise<number> {
  const address = hostAddress(cfg, host);
  const tty = cmd.length === 0 && !!process.stdin.isTTY;
  return ctlInteractive(cfg, ['ssh', ...sshArgs(cfg, address, { tty, batch: false }), ...(cmd.length ? [cmd.join(' ')] : [])]);
}

/**
 * Takes the lab down only if `decide` (called with the lab's state, under the lab's lock) says so;
 * resolves to true when it did.
 */
export async function labDownIf(cfg: LabConfig, decide: (state: LabState) => boolean): Promise<boolean> {
  requireSupported();
  return withLock(`${cfg.stateDir}/lab`, `lab "${cfg.name}"`, 30 * 60_000, async () => {
    const state = readState(cfg);
    if (!state || !decide(state)) return false;
    await teardown(cfg, state);
    log(`lab "${cfg.name}" is down`);
    return true;
  });
}
