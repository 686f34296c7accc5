// The lab's hosts: systemd containers (systemd-nspawn --boot) over the shared base image, each with
// its own overlay upper directory, cgroup and network namespace.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_MOUNT, type LabConfig, type LabHost } from './config.ts';
import { hostNs, netnsPath } from './net.ts';
import { shq } from '../engine/shell.ts';
import { processStartTime, runOk, sameProcessAlive, sleep, type RunResult } from './proc.ts';
import { applyLimits, v1LimitRoots, type HostLimits } from './limits.ts';
import type { Launcher } from './state.ts';

export const hostDir = (cfg: LabConfig, host: string): string => join(cfg.stateDir, 'hosts', host);
export const upperDir = (cfg: LabConfig, host: string): string => join(hostDir(cfg, host), 'upper');
export const consoleLog = (cfg: LabConfig, host: string): string => join(hostDir(cfg, host), 'console.log');
export const keyPath = (cfg: LabConfig): string => join(cfg.stateDir, 'id_ed25519');
export const knownHostsPath = (cfg: LabConfig): string => join(cfg.stateDir, 'known_hosts');

/**
 * The cgroup hierarchies a launcher joins: the named systemd hierarchy and the unified one on a
 * hybrid layout, or the single unified one. nspawn (--keep-unit) makes its cgroup the container's.
 */
export function cgroupRoots(): string[] {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return ['/sys/fs/cgroup'];
  const roots = ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified'].filter((r) => existsSync(join(r, 'cgroup.procs')));
  if (roots.length === 0) throw new Error('no systemd or unified cgroup hierarchy under /sys/fs/cgroup: systemd-nspawn needs one');
  return roots;
}

/**
 * A host's cgroup directories: systemd's hierarchy (or the unified one) first, then on cgroup v1 the
 * cpu and memory hierarchies that carry its limits.
 */
export const cgroupDirs = (cfg: LabConfig, host: string): string[] =>
  [...cgroupRoots(), ...v1LimitRoots()].map((r) => join(r, `${cfg.prefix}${host}`));

/** The lab's SSH key pair (ed25519), made once per lab state directory. */
export async function ensureLabKey(cfg: LabConfig): Promise<string> {
  const key = keyPath(cfg);
  mkdirSync(cfg.stateDir, { recursive: true });
  if (!existsSync(key) || !existsSync(`${key}.pub`)) {
    await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `hasetup-lab-${cfg.name}`, '-f', key], { input: 'y\n' });
  }
  chmodSync(key, 0o600);
  return key;
}

function mkdirMode(path: string, mode: number): void {
  mkdirSync(path, { recursive: true });
  chmodSync(path, mode);
}

/**
 * Writes what makes a host itself into its fresh upper directory: hostname, machine id, /etc/hosts,
 * its own SSH host key, and the lab key in root's authorized_keys. Returns its public host key line.
 */
export async function prepareUpper(cfg: LabConfig, host: LabHost, all: LabHost[], pubKey: string): Promise<string> {
  const upper = upperDir(cfg, host.name);
  mkdirMode(upper, 0o755);
  mkdirMode(join(upper, 'etc'), 0o755);
  mkdirMode(join(upper, 'etc/ssh'), 0o755);
  mkdirMode(join(upper, 'root'), 0o700);
  mkdirMode(join(upper, 'root/.ssh'), 0o700);
  writeFileSync(join(upper, 'etc/hostname'), `${host.name}\n`);
  writeFileSync(join(upper, 'etc/machine-id'), `${randomBytes(16).toString('hex')}\n`, { mode: 0o444 });
  writeFileSync(
    join(upper, 'etc/hosts'),
    [
      '127.0.0.1\tlocalhost',
      `127.0.1.1\t${host.name}`,
      '::1\tlocalhost ip6-localhost ip6-loopback',
      ...all.map((h) => `${h.address}\t${h.name}`),
      '',
    ].join('\n'),
  );
  writeFileSync(join(upper, 'root/.ssh/authorized_keys'), pubKey.trim() + '\n', { mode: 0o600 });
  const hk = join(upper, 'etc/ssh/ssh_host_ed25519_key');
  await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `root@${host.name}`, '-f', hk], { input: 'y\n' });
  const pub = readFileSync(`${hk}.pub`, 'utf8').trim().split(/\s+/);
  return `${host.name},${host.address} ${pub[0]} ${pub[1]}`;
}

/**
 * Starts a host: a shell that moves itself into the host's own cgroups (its limits set on them
 * first), then becomes nsenter into the host's network namespace, then systemd-nspawn booting the
 * overlay. Returns the launcher's identity.
 */
export function launchHost(cfg: LabConfig, host: LabHost, baseDir: string, repoDir: string, limits?: HostLimits): Launcher {
  const cgroups = cgroupDirs(cfg, host.name);
  for (const cg of cgroups) mkdirSync(cg, { recursive: true });
  if (limits) applyLimits(cgroups, limits);
  const nspawn = [
    'nsenter',
    `--net=${netnsPath(hostNs(cfg, host.name))}`,
    'systemd-nspawn',
    '--quiet',
    '-D',
    baseDir,
    `--overlay=${baseDir}:${upperDir(cfg, host.name)}:/`,
    '--boot',
    '--register=no',
    '--keep-unit',
    '--capability=CAP_NET_ADMIN',
    '--resolv-conf=off',
    '--timezone=off',
    '--link-journal=no',
    '--console=read-only',
    `--bind-ro=${repoDir}:${REPO_MOUNT}`,
    '-M',
    `${cfg.prefix}${host.name}`,
    `--hostname=${host.name}`,
  ];
  const script = [...cgroups.map((cg) => `echo $$ > ${shq(join(cg, 'cgroup.procs'))}`), `exec ${nspawn.map(shq).join(' ')}`].join(' && ');
  const out = openSync(consoleLog(cfg, host.name), 'a');
  try {
    const child = spawn('sh', ['-c', script], {
      detached: true,
      stdio: ['ignore', out, out],
      // /proc/sys/net writable inside: the LBs set net.ipv4.ip_nonlocal_bind
      env: { ...process.env, SYSTEMD_NSPAWN_API_VFS_WRITABLE: 'network' },
    });
    child.unref();
    if (!child.pid) throw new Error(`cannot start the launcher of ${host.name}`);
    const startTime = processStartTime(child.pid);
    if (!startTime) throw new Error(`the launcher of ${host.name} died at once: see ${consoleLog(cfg, host.name)}`);
    return { host: host.name, pid: child.pid, startTime };
  } finally {
    closeSync(out);
  }
}

/** PIDs in a cgroup and all its descendants. */
export function cgroupPids(dir: string): number[] {
  const pids: number[] = [];
  if (!existsSync(dir)) return pids;
  try {
    for (const l of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (l.trim()) pids.push(Number(l));
  } catch {}
  let entries: string[] = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {}
  for (const e of entries) pids.push(...cgroupPids(join(dir, e)));
  return pids;
}

/** Removes a cgroup and its descendants, deepest first (they must be empty of processes). */
export function removeCgroup(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroup(join(dir, e.name));
  rmdirSync(dir);
}

/**
 * Stops a host: SIGTERM to nspawn (the container powers off), then after graceMs SIGKILL to every
 * process left in the host's cgroups, then removes the cgroups.
 */
export async function stopHost(launcher: Launcher | undefined, cgroups: string[], graceMs: number): Promise<void> {
  if (launcher && sameProcessAlive(launcher.pid, launcher.startTime)) {
    try {
      process.kill(launcher.pid, 'SIGTERM');
    } catch {}
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && sameProcessAlive(launcher.pid, launcher.startTime)) await sleep(100);
  }
  for (let round = 0; round < 50; round++) {
    const all = cgroups.flatMap(cgroupPids);
    if (all.length === 0) break;
    // the container's processes first, nspawn last, so that nspawn reaps the container's init
    // (an orphaned one would wait for this machine's init to reap it)
    const others = all.filter((p) => p !== launcher?.pid);
    const pids = others.length && round < 30 ? others : all;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    await sleep(100);
  }
  const left = cgroups.flatMap(cgroupPids);
  if (left.length) throw new Error(`processes ${left.join(' ')} are still in ${cgroups.join(', ')}`);
  for (let round = 0; ; round++) {
    try {
      for (const cg of cgroups) removeCgroup(cg);
      return;
    } catch (err) {
      // a cgroup just emptied may report busy for a moment
      if (round >= 20) throw err;
      await sleep(100);
    }
  }
}

/** The ssh command line that reaches a lab host (run it inside the ctl namespace). */
export function sshArgs(cfg: LabConfig, address: string, opts: { tty?: boolean; batch?: boolean } = {}): string[] {
  return [
    '-F',
    '/dev/null',
    '-i',
    keyPath(cfg),
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${knownHostsPath(cfg)}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'ConnectTimeout=5',
    '-o',
    'LogLevel=ERROR',
    ...(opts.batch === false ? [] : ['-o', 'BatchMode=yes']),
    ...(opts.tty ? ['-t'] : ['-T']),
    `root@${address}`,
  ];
}

/**
 * A Node script, run inside the ctl namespace, that waits until every given address answers with an
 * SSH banner on port 22 (or the deadline), and prints a JSON map address → banner seen.
 */
export const sshProbeScript = `
const net = require('node:net');
const [deadlineMs, ...addrs] = process.argv.slice(1);
const deadline = Date.now() + Number(deadlineMs);
const ok = {};
function probe(a) {
  return new Promise((res) => {
    const s = net.connect({ host: a, port: 22 });
    let buf = '';
    const done = (v) => { s.destroy(); res(v); };
    s.setTimeout(1000, () => done(false));
    s.on('data', (d) => { buf += d; if (buf.includes('SSH-2.0')) done(true); });
    s.on('error', () => done(false));
    s.on('close', () => done(buf.includes('SSH-2.0')));
  });
}
(async () => {
  for (;;) {
    await Promise.all(addrs.filter((a) => !ok[a]).map(async (a) => { if (await probe(a)) ok[a] = true; }));
    if (addrs.every((a) => ok[a]) || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 150));
  }
  console.log(JSON.stringify(Object.fromEntries(addrs.map((a) => [a, !!ok[a]]))));
})();
`;

export type Exec = (cmd: string, args: string[]) => Promise<RunResult>;
