// Facts: what the engine knows of a host, gathered once per run in one round trip with the host's
// own tools (no agent, no python), then cached for the run.
import { execRead, type Transport } from './transport.ts';
import { shq } from './shell.ts';

export interface Interface {
  name: string;
  addresses: string[]; // address/prefix
  up: boolean;
}

export interface Facts {
  hostname: string;
  os: { id: string; versionId: string; codename: string; prettyName: string };
  arch: string;
  kernel: string;
  init: 'systemd' | 'other';
  /** systemd-detect-virt's answer: 'none', 'kvm', 'systemd-nspawn'... */
  virt: string;
  /** True inside a container (time comes from the host, some units do not start). */
  container: boolean;
  /** The memory this host may use: the smaller of its RAM and its cgroup's memory.max (a container, a VPS slice). */
  memoryMb: number;
  /** Online CPUs (nproc). */
  cpus: number;
  /** The CPU time this host may use, in cores: cpus, or less when its cgroup's cpu.max says so (0.5: half a core). */
  cpuCores: number;
  /** The cgroup's own limits as read (null: none), for the sizing's explanation. */
  limits: { memoryMb: number | null; cpus: number | null };
  interfaces: Interface[];
  /** Installed packages of interest, name -> version. */
  packages: Record<string, string>;
  /** systemd units of interest, name -> { active, enabled } (as systemctl prints them). */
  services: Record<string, { active: string; enabled: string }>;
  user: string;
  /** hasetup's own records on the host (RECORDS_DIR): name -> value. */
  records: Record<string, string>;
}

/** The packages and services whose state the facts read: what the host's roles install and run (Role.installs). */
export interface Interest {
  packages: string[];
  services: string[];
}

/** Always read: the SSH server (status, init) and sudo. */
const ALWAYS: Interest = { packages: ['openssh-server', 'sudo'], services: ['ssh'] };

const SECTIONS = [
  'hostname',
  'os',
  'arch',
  'kernel',
  'init',
  'mem',
  'cpus',
  'limits',
  'ip',
  'pkgs',
  'svc',
  'user',
  'virt',
  'state',
] as const;

/**
 * The cgroup limits of the login's cgroup namespace root: cgroup v2's memory.max and cpu.max (a lab
 * container's, or a VPS whose provider limits it that way), or v1's limit_in_bytes and CFS quota.
 * Two lines: the memory limit in bytes or "max"; the CPU quota and period in us, or "max".
 */
export const LIMITS_SCRIPT =
  'if [ -f /sys/fs/cgroup/cgroup.controllers ]; then cat /sys/fs/cgroup/memory.max 2>/dev/null || echo max; cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo max; ' +
  'else cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || echo max; ' +
  'q=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || echo -1); p=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null || echo 100000); ' +
  '[ "$q" -gt 0 ] 2>/dev/null && echo "$q $p" || echo max; fi';

/** The cgroup limits from LIMITS_SCRIPT's two lines: memory in MiB and CPUs (null: no limit). */
export function parseLimits(text: string, memTotalMb: number): { memoryMb: number | null; cpus: number | null } {
  const [mem = 'max', cpu = 'max'] = text.split('\n').map((l) => l.trim());
  const bytes = /^\d+$/.test(mem) ? Number(mem) : null;
  // v1 reports "no limit" as a huge number: a limit at or above the RAM is none
  const memoryMb = bytes !== null && bytes / 1048576 < memTotalMb ? Math.floor(bytes / 1048576) : null;
  const m = /^(\d+)\s+(\d+)$/.exec(cpu);
  const cpus = m && Number(m[2]) > 0 ? Math.round((Number(m[1]) / Number(m[2])) * 100) / 100 : null;
  return { memoryMb, cpus };
}

/** The shell commands of a host's memory (kB), CPUs and cgroup limits, one per section (status reads them too). */
export const RESOURCE_SCRIPTS = {
  mem: "awk '/^MemTotal:/ {print $2}' /proc/meminfo",
  cpus: 'nproc 2>/dev/null || getconf _NPROCESSORS_ONLN',
  limits: LIMITS_SCRIPT,
} as const;

/** What the host may use, from RESOURCE_SCRIPTS' answers: its RAM and CPUs, or less when its cgroup says so. */
export function parseResources(
  mem: string,
  cpusText: string,
  limitsText: string,
): Pick<Facts, 'memoryMb' | 'cpus' | 'cpuCores' | 'limits'> {
  const memTotalMb = Math.round(Number(mem.trim() || 0) / 1024);
  const cpus = Number(cpusText.trim() || 1);
  const limits = parseLimits(limitsText, memTotalMb);
  return {
    memoryMb: limits.memoryMb === null ? memTotalMb : Math.min(memTotalMb, limits.memoryMb),
    cpus,
    cpuCores: limits.cpus === null ? cpus : Math.min(cpus, limits.cpus),
    limits,
  };
}

/** Where hasetup keeps its state on each host (root's alone: the common role makes it 0700). */
export const STATE_DIR = '/var/lib/hasetup';
/** Where hasetup's commands record what the roles must keep (a web node drained: `drain.web01` holding `drain`). */
export const RECORDS_DIR = `${STATE_DIR}/state`;

export function factsScript(mark: string, interest: Interest = { packages: [], services: [] }): string {
  const s = (name: string, cmd: string) => `echo ${mark}${name}; ${cmd}`;
  const pkgs = [...new Set([...ALWAYS.packages, ...interest.packages])];
  const units = [...new Set([...ALWAYS.services, ...interest.services])];
  return [
    s('hostname', 'hostname 2>/dev/null || cat /etc/hostname'),
    s('os', 'cat /etc/os-release 2>/dev/null'),
    s('arch', 'uname -m'),
    s('kernel', 'uname -r'),
    s('init', '[ -d /run/systemd/system ] && echo systemd || echo other'),
    s('mem', RESOURCE_SCRIPTS.mem),
    s('cpus', RESOURCE_SCRIPTS.cpus),
    s('limits', RESOURCE_SCRIPTS.limits),
    // JSON where iproute2 has it (since 4.13), one line per address and link otherwise
    s('ip', 'ip -j addr show 2>/dev/null || { echo ---; ip -o addr show 2>/dev/null; echo ---; ip -o link show 2>/dev/null; }'),
    s('pkgs', `dpkg-query -W -f='\${Package} \${db:Status-Abbrev} \${Version}\\n' ${pkgs.map(shq).join(' ')} 2>/dev/null`),
    // One systemctl call for every unit (a call per unit and question cost ~10 ms each).
    s('svc', `systemctl show -p Id,LoadState,ActiveState,UnitFileState -- ${units.map((u) => shq(`${u}.service`)).join(' ')} 2>/dev/null`),
    s('user', 'id -un'),
    s('virt', 'systemd-detect-virt 2>/dev/null || true; systemd-detect-virt --container 2>/dev/null || true'),
    s(
      'state',
      `for f in ${RECORDS_DIR}/*; do [ -f "$f" ] && printf '%s=%s\\n' "\${f##*/}" "$(head -c 200 "$f" | tr -d '\\n')"; done 2>/dev/null; true`,
    ),
  ].join('\n');
}

/** Splits the output of a script whose sections start with `${mark}NAME` lines. */
export function splitSections(out: string, mark: string): Record<string, string> {
  const res: Record<string, string> = {};
  let cur: string | null = null;
  let buf: string[] = [];
  for (const line of out.split('\n')) {
    if (line.startsWith(mark)) {
      if (cur !== null) res[cur] = buf.join('\n');
      cur = line.slice(mark.length);
      buf = [];
    } else if (cur !== null) buf.push(line);
  }
  if (cur !== null) res[cur] = buf.join('\n').replace(/\n$/, '');
  return res;
}

export function parseFacts(out: string, mark: string): Facts {
  const sec = splitSections(out, mark);
  for (const name of SECTIONS) if (!(name in sec)) throw new Error(`facts: section ${name} missing from the host's answer`);
  const osr: Record<string, string> = {};
  for (const line of sec.os.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) osr[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
  }
  const interfaces = parseInterfaces(sec.ip);
  const packages: Record<string, string> = {};
  for (const line of sec.pkgs.split('\n')) {
    const [name, status, version] = line.trim().split(/\s+/);
    if (name && status === 'ii') packages[name] = version ?? '';
  }
  // Blocks of Key=Value lines, one block per unit, separated by blank lines.
  const services: Record<string, { active: string; enabled: string }> = {};
  for (const block of sec.svc.split(/\n\s*\n/)) {
    const kv: Record<string, string> = {};
    for (const line of block.split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) kv[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
    if (!kv.Id) continue;
    const name = kv.Id.replace(/\.service$/, '');
    services[name] = {
      active: kv.ActiveState || 'unknown',
      enabled: kv.LoadState === 'not-found' ? 'not-found' : kv.UnitFileState || 'static',
    };
  }
  const { memoryMb, cpus, cpuCores, limits } = parseResources(sec.mem, sec.cpus, sec.limits);
  return {
    hostname: sec.hostname.trim(),
    os: { id: osr.ID ?? '', versionId: osr.VERSION_ID ?? '', codename: osr.VERSION_CODENAME ?? '', prettyName: osr.PRETTY_NAME ?? '' },
    arch: sec.arch.trim(),
    kernel: sec.kernel.trim(),
    init: sec.init.trim() === 'systemd' ? 'systemd' : 'other',
    virt: sec.virt.split('\n')[0]?.trim() || 'none',
    container: (sec.virt.split('\n')[1]?.trim() || 'none') !== 'none',
    memoryMb,
    cpus,
    cpuCores,
    limits,
    interfaces,
    packages,
    services,
    user: sec.user.trim(),
    records: Object.fromEntries(
      sec.state
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    ),
  };
}

/** Interfaces from `ip -j addr show`, or from `ip -o addr show` and `ip -o link show` after a "---" line. */
export function parseInterfaces(text: string): Interface[] {
  if (!text.startsWith('---')) {
    const links = JSON.parse(text) as {
      ifname: string;
      flags?: string[];
      addr_info?: { family: string; local: string; prefixlen: number }[];
    }[];
    return links.map((l) => ({
      name: l.ifname,
      up: (l.flags ?? []).includes('UP'),
      addresses: (l.addr_info ?? []).filter((a) => a.family === 'inet' || a.family === 'inet6').map((a) => `${a.local}/${a.prefixlen}`),
    }));
  }
  const [, addrPart = '', linkPart = ''] = text.split(/^---$/m);
  const ifaces = new Map<string, Interface>();
  for (const line of linkPart.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)(?:@\S+)?:\s+<([^>]*)>/.exec(line);
    if (m) ifaces.set(m[1], { name: m[1], addresses: [], up: m[2].split(',').includes('UP') });
  }
  for (const line of addrPart.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+inet6?\s+(\S+)/.exec(line);
    if (!m) continue;
    const i = ifaces.get(m[1]) ?? { name: m[1], addresses: [], up: true };
    i.addresses.push(m[2]);
    ifaces.set(m[1], i);
  }
  return [...ifaces.values()];
}

export async function gatherFacts(t: Transport, mark: string, interest?: Interest): Promise<Facts> {
  const r = await execRead(t, factsScript(mark, interest));
  if (r.code !== 0 && !r.stdout.includes(mark)) throw new Error(`gathering facts failed (exit ${r.code}): ${r.stderr.trim()}`);
  return parseFacts(r.stdout, mark);
}
