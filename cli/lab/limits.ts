// Each lab host's CPU and memory limit, as a small VPS has: set on the host's own cgroup before it
// boots, so that a web node saturates long before the machine running the lab does, and visible from
// inside the host (the container's cgroup namespace starts at that cgroup).
//
// cgroup v2 (one unified hierarchy): cpu.max and memory.max on the host's cgroup, and the same values
// on the "payload" cgroup below it that systemd-nspawn makes the container's root, so that a process
// in the host reads them at /sys/fs/cgroup/cpu.max and /sys/fs/cgroup/memory.max.
// cgroup v1 (the controllers on hierarchies of their own, the systemd hierarchy hybrid or not): the
// host joins a cgroup of its own in the cpu and memory hierarchies, with cpu.cfs_quota_us over
// cpu.cfs_period_us and memory.limit_in_bytes; inside, /sys/fs/cgroup/cpu/cpu.cfs_quota_us and
// /sys/fs/cgroup/memory/memory.limit_in_bytes.
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Group } from '../../inventory/types.ts';
import { LabError } from './config.ts';

/** A host's limits: CPU in cores (0.5 = half of one core), memory in bytes; null = no limit. */
export interface HostLimits {
  cpu: number | null;
  memory: number | null;
}

export type GroupLimits = Record<Group, HostLimits>;

const MiB = 1024 * 1024;

/**
 * A web node (Apache, PHP-FPM) at half a core and 512 MiB: two of them saturate at one core, well
 * before the machine's two. An LB (the bundled Node proxy or HAProxy, keepalived) at one core and
 * 512 MiB, so that the LB tier is not the first to saturate; the DB (MariaDB, whose buffer pool is
 * 128 MiB by default) at one core and 1 GiB.
 */
export const DEFAULT_LIMITS: GroupLimits = {
  lb: { cpu: 1, memory: 512 * MiB },
  web: { cpu: 0.5, memory: 512 * MiB },
  db: { cpu: 1, memory: 1024 * MiB },
};

/** The CFS period the lab's quotas are expressed in (the kernel's default, 100 ms). */
export const CPU_PERIOD_US = 100_000;

/** "0.5", "2", "max" (no limit) → cores; an error naming the flag otherwise. */
export function parseCpu(value: string, flag: string): number | null {
  const v = value.trim();
  if (v === 'max') return null;
  if (!/^\d+(\.\d+)?$/.test(v)) throw new LabError(`${flag} must be a number of cores (0.5, 1, 2) or max, not "${value}"`, 2);
  const n = Number(v);
  if (n < 0.01 || n > 1024) throw new LabError(`${flag} must be between 0.01 and 1024 cores, not ${value}`, 2);
  return n;
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: MiB, g: 1024 * MiB };

/** "512M", "512MiB", "1G", "268435456", "max" (no limit) → bytes; an error naming the flag otherwise. */
export function parseMemory(value: string, flag: string): number | null {
  const v = value.trim();
  if (v === 'max') return null;
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(v);
  if (!m) throw new LabError(`${flag} must be a size such as 512M, 1G or max, not "${value}"`, 2);
  const bytes = Math.floor(Number(m[1]) * UNITS[m[2].toLowerCase()]);
  if (bytes < 64 * MiB) throw new LabError(`${flag} must be at least 64M (a host boots systemd and sshd), not ${value}`, 2);
  return bytes;
}

export const formatCpu = (cpu: number | null): string => (cpu === null ? 'no cpu limit' : `${cpu} cpu`);
export function formatMemory(bytes: number | null): string {
  if (bytes === null) return 'no memory limit';
  return bytes % (1024 * MiB) === 0 ? `${bytes / (1024 * MiB)} GiB` : `${(bytes / MiB).toFixed(bytes % MiB ? 1 : 0)} MiB`;
}
export const formatLimits = (l: HostLimits): string => `${formatCpu(l.cpu)}, ${formatMemory(l.memory)}`;

/** The defaults, with what the caller set for some groups over them. */
export function mergeLimits(base: GroupLimits, over: Partial<Record<Group, Partial<HostLimits>>> = {}): GroupLimits {
  const out = structuredClone(base);
  for (const g of ['lb', 'web', 'db'] as const) {
    const o = over[g];
    if (o?.cpu !== undefined) out[g].cpu = o.cpu;
    if (o?.memory !== undefined) out[g].memory = o.memory;
  }
  return out;
}

/** The machine's cgroup layout: one unified hierarchy (v2), or controllers on v1 hierarchies. */
export type CgroupLayout = 'v2' | 'v1';

export function cgroupLayout(): CgroupLayout {
  return existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'v2' : 'v1';
}

/** On cgroup v1, the hierarchies a host joins for its limits (besides systemd's and the unified one). */
export function v1LimitRoots(): string[] {
  if (cgroupLayout() === 'v2') return [];
  const roots = ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/memory'];
  for (const r of roots)
    if (!existsSync(join(r, 'cgroup.procs')))
      throw new LabError(`no cgroup v1 hierarchy at ${r}: the lab cannot limit its hosts' CPU and memory on this machine`);
  // CPU accounting, where it is a hierarchy apart from cpu (not mounted together as cpu,cpuacct): the
  // host joins it too, so that its cpuacct.usage is its own CPU time and not the whole machine's
  const acct = '/sys/fs/cgroup/cpuacct';
  if (existsSync(join(acct, 'cgroup.procs')) && realpathSync(acct) !== realpathSync(roots[0])) roots.push(acct);
  return roots;
}

function write(file: string, value: string): void {
  try {
    writeFileSync(file, value);
  } catch (err) {
    throw new LabError(`cannot write "${value}" to ${file}: ${(err as Error).message}`, 1, { cause: err });
  }
}

/** On cgroup v2, makes the cpu and memory controllers available to the children of `parent`. */
function enableV2Controllers(parent: string): void {
  const have = readFileSync(join(parent, 'cgroup.subtree_control'), 'utf8').split(/\s+/);
  const want = ['cpu', 'memory'].filter((c) => !have.includes(c));
  if (want.length) write(join(parent, 'cgroup.subtree_control'), want.map((c) => `+${c}`).join(' '));
}

function writeV2(dir: string, limits: HostLimits): void {
  write(join(dir, 'cpu.max'), `${limits.cpu === null ? 'max' : Math.round(limits.cpu * CPU_PERIOD_US)} ${CPU_PERIOD_US}`);
  write(join(dir, 'memory.max'), limits.memory === null ? 'max' : String(limits.memory));
}

/**
 * Sets a host's limits on its cgroups (made before the host's launcher joins them; again on a
 * running host, whose new limits apply at once). `dirs` are the host's cgroup directories.
 */
export function applyLimits(dirs: string[], limits: HostLimits): void {
  if (cgroupLayout() === 'v2') {
    const dir = dirs.find((d) => d.startsWith('/sys/fs/cgroup/'));
    if (!dir) return;
    enableV2Controllers('/sys/fs/cgroup');
    writeV2(dir, limits);
    // the container's own root, once systemd-nspawn has made it: what the host sees of its limits
    if (existsSync(join(dir, 'payload'))) {
      enableV2Controllers(dir);
      writeV2(join(dir, 'payload'), limits);
    }
    return;
  }
  const cpu = dirs.find((d) => d.startsWith('/sys/fs/cgroup/cpu/'));
  const mem = dirs.find((d) => d.startsWith('/sys/fs/cgroup/memory/'));
  if (cpu) {
    write(join(cpu, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
    write(join(cpu, 'cpu.cfs_quota_us'), limits.cpu === null ? '-1' : String(Math.round(limits.cpu * CPU_PERIOD_US)));
  }
  if (mem) write(join(mem, 'memory.limit_in_bytes'), limits.memory === null ? '-1' : String(limits.memory));
}

/** v1's "no limit" for memory: the largest page-aligned value (9223372036854771712 on 4 KiB pages). */
const V1_UNLIMITED = 2n ** 62n;

function readOr(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

/** The limits in force on a host's cgroups (read back from the kernel); null fields = none, undefined = unreadable. */
export function readLimits(dirs: string[]): { cpu?: number | null; memory?: number | null } {
  if (cgroupLayout() === 'v2') {
    const dir = dirs.find((d) => d.startsWith('/sys/fs/cgroup/'));
    const cpuMax = dir ? readOr(join(dir, 'cpu.max')) : null;
    const memMax = dir ? readOr(join(dir, 'memory.max')) : null;
    const [q, p] = (cpuMax ?? '').split(' ');
    return {
      cpu: cpuMax === null ? undefined : q === 'max' ? null : Number(q) / Number(p),
      memory: memMax === null ? undefined : memMax === 'max' ? null : Number(memMax),
    };
  }
  const cpu = dirs.find((d) => d.startsWith('/sys/fs/cgroup/cpu/'));
  const mem = dirs.find((d) => d.startsWith('/sys/fs/cgroup/memory/'));
  const quota = cpu ? readOr(join(cpu, 'cpu.cfs_quota_us')) : null;
  const period = cpu ? readOr(join(cpu, 'cpu.cfs_period_us')) : null;
  const limit = mem ? readOr(join(mem, 'memory.limit_in_bytes')) : null;
  return {
    cpu: quota === null || period === null ? undefined : Number(quota) < 0 ? null : Number(quota) / Number(period),
    memory: limit === null ? undefined : BigInt(limit) >= V1_UNLIMITED ? null : Number(limit),
  };
}
