// Facts: what the engine knows of a host, gathered once per run in one round trip with the host's
// own tools (no agent, no python), then cached for the run.
import type { Transport } from './transport.ts';
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
  memoryMb: number;
  cpus: number;
  interfaces: Interface[];
  /** Installed packages of interest, name -> version. */
  packages: Record<string, string>;
  /** systemd units of interest, name -> { active, enabled } (as systemctl prints them). */
  services: Record<string, { active: string; enabled: string }>;
  user: string;
}

/** Packages and services the roles care about: their state is read with the facts. */
export const PACKAGES_OF_INTEREST = [
  'apache2', 'mariadb-server', 'mariadb-client', 'nodejs', 'nftables', 'curl', 'iputils-arping', 'chrony',
  'haproxy', 'keepalived', 'sudo', 'openssh-server',
];
export const SERVICES_OF_INTEREST = [
  'apache2', 'mariadb', 'nftables', 'chrony', 'haproxy', 'keepalived', 'hasetup-proxy', 'hasetup-vrrpd', 'ssh',
];

const SECTIONS = ['hostname', 'os', 'arch', 'kernel', 'init', 'mem', 'cpus', 'ip', 'pkgs', 'svc', 'user', 'virt'] as const;

export function factsScript(mark: string): string {
  const s = (name: string, cmd: string) => `echo ${mark}${name}; ${cmd}`;
  return [
    s('hostname', 'hostname 2>/dev/null || cat /etc/hostname'),
    s('os', 'cat /etc/os-release 2>/dev/null'),
    s('arch', 'uname -m'),
    s('kernel', 'uname -r'),
    s('init', '[ -d /run/systemd/system ] && echo systemd || echo other'),
    s('mem', "awk '/^MemTotal:/ {print $2}' /proc/meminfo"),
    s('cpus', 'nproc 2>/dev/null || getconf _NPROCESSORS_ONLN'),
    s('ip', 'ip -o addr show 2>/dev/null; echo ---; ip -o link show 2>/dev/null'),
    s('pkgs', `dpkg-query -W -f='\${Package} \${db:Status-Abbrev} \${Version}\\n' ${PACKAGES_OF_INTEREST.map(shq).join(' ')} 2>/dev/null`),
    // One systemctl call for every unit (a call per unit and question cost ~10 ms each).
    s('svc', `systemctl show -p Id,LoadState,ActiveState,UnitFileState -- ${SERVICES_OF_INTEREST.map((u) => `${u}.service`).join(' ')} 2>/dev/null`),
    s('user', 'id -un'),
    s('virt', 'systemd-detect-virt 2>/dev/null || true; systemd-detect-virt --container 2>/dev/null || true'),
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
  const [addrPart, linkPart = ''] = sec.ip.split('\n---\n');
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
    services[name] = { active: kv.ActiveState || 'unknown', enabled: kv.LoadState === 'not-found' ? 'not-found' : kv.UnitFileState || 'static' };
  }
  return {
    hostname: sec.hostname.trim(),
    os: { id: osr.ID ?? '', versionId: osr.VERSION_ID ?? '', codename: osr.VERSION_CODENAME ?? '', prettyName: osr.PRETTY_NAME ?? '' },
    arch: sec.arch.trim(),
    kernel: sec.kernel.trim(),
    init: sec.init.trim() === 'systemd' ? 'systemd' : 'other',
    virt: sec.virt.split('\n')[0]?.trim() || 'none',
    container: (sec.virt.split('\n')[1]?.trim() || 'none') !== 'none',
    memoryMb: Math.round(Number(sec.mem.trim() || 0) / 1024),
    cpus: Number(sec.cpus.trim() || 1),
    interfaces: [...ifaces.values()],
    packages,
    services,
    user: sec.user.trim(),
  };
}

export async function gatherFacts(t: Transport, mark: string): Promise<Facts> {
  const r = await t.exec(factsScript(mark));
  if (r.code !== 0 && !r.stdout.includes(mark)) throw new Error(`gathering facts failed (exit ${r.code}): ${r.stderr.trim()}`);
  return parseFacts(r.stdout, mark);
}
