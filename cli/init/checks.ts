// The host checks: what the probes found, judged against the answers. Each check is a row (host,
// check, result) and a problem row says what to do about it. Pure functions: the probes gather,
// these judge, the wizard shows.
import { parseCidr } from '../../inventory/net.ts';
import type { Answers, Group } from './answers.ts';
import { carrier, keyType, type Probe, type Target, type VipSeen } from './probe.ts';
import { cidrsContain, validVip } from './validate.ts';

export interface Row {
  host: string;
  check: string;
  /** true: fine; false: a problem; null: not checked. */
  ok: boolean | null;
  result: string;
  /** What to do (problems only). */
  fix?: string;
}

/**
 * What each role needs at least: memory as the kernel reports it (MemTotal, a little under the
 * machine's size: the Vagrant lab's VMs of 384, 512 and 768 MiB pass) and free space where apt and
 * the data go (/var).
 */
export const NEEDS: Record<Group, { memoryMb: number; diskMb: number; role: string }> = {
  lb: { memoryMb: 256, diskMb: 512, role: 'load balancer' },
  web: { memoryMb: 384, diskMb: 1024, role: 'web node' },
  db: { memoryMb: 512, diskMb: 2048, role: 'database host' },
};

export const SYSTEMS = ['debian', 'ubuntu'];

const mib = (n: number) => (n >= 1024 ? `${(n / 1024).toFixed(1)} GiB` : `${n} MiB`);
const v4 = (addrs: string[]) => addrs.filter((x) => !x.includes(':'));

export type Detected = { name: string; prefix: number; from: string[] } | { name?: undefined; why: string; guess?: string };

/** The LBs' interface, read from the LBs that answered: the one that carries each LB's address. */
export function detectInterface(lbs: Target[], probes: Map<string, Probe>): Detected {
  const found: { lb: string; name: string; prefix: number }[] = [];
  for (const lb of lbs) {
    const p = probes.get(lb.name);
    if (!p?.ok) continue;
    const c = carrier(p.facts, lb.address);
    if (c) found.push({ lb: lb.name, ...c });
  }
  if (found.length === 0)
    return { why: probes.size ? 'no load balancer answered with its address on an interface' : 'the hosts were not contacted' };
  const names = [...new Set(found.map((f) => f.name))];
  if (names.length > 1)
    return {
      why: `the load balancers carry their addresses on different interfaces (${found.map((f) => `${f.lb}: ${f.name}`).join(', ')}); the VIP needs one name on both`,
      guess: found[0].name,
    };
  return { name: names[0], prefix: found[0].prefix, from: found.map((f) => f.lb) };
}

/** The LB whose interfaces already carry the VIP (a cluster that runs), by what the probes found. */
export function vipHolder(lbs: Target[], probes: Map<string, Probe>, vip: string): string | null {
  for (const lb of lbs) {
    const p = probes.get(lb.name);
    if (p?.ok && carrier(p.facts, vip)) return lb.name;
  }
  return null;
}

/** The checks of one host. vip: what the host (an LB) saw of the VIP. */
export function hostRows(t: Target, p: Probe | undefined, a: Answers, vip?: VipSeen): Row[] {
  const row = (check: string, ok: boolean | null, result: string, fix?: string): Row => ({
    host: t.name,
    check,
    ok,
    result,
    ...(fix ? { fix } : {}),
  });
  if (!p) return [row('ssh', null, 'not checked')];
  if (!p.ok) return [row('ssh', false, p.error, p.fix), row('others', null, 'not checked: the host was not reached')];
  const f = p.facts;
  const rows: Row[] = [row('ssh', true, p.target)];
  if (p.hostKey)
    rows.push(
      row(
        'host key',
        true,
        `${keyType(p.hostKey.type)} ${p.hostKey.fingerprint} ${p.hostKey.firstUse ? '(new: recorded when written)' : '(already known)'}`,
      ),
    );
  const os = f.os.prettyName || f.os.id || 'unknown';
  rows.push(
    SYSTEMS.includes(f.os.id)
      ? row('system', true, os)
      : row(
          'system',
          false,
          `${os}: not Debian or Ubuntu`,
          "use a Debian or Ubuntu host: the roles install with apt and Debian's packages",
        ),
  );
  rows.push(
    f.init === 'systemd'
      ? row('init', true, 'systemd')
      : row('init', false, 'not running systemd', 'use a host booted with systemd: the roles manage their services with it'),
  );
  if (p.sudo === 'root') rows.push(row('sudo', true, 'logged in as root'));
  else if (p.sudo === 'ok') rows.push(row('sudo', true, `${a.sshUser} runs sudo without a password`));
  else if (p.sudo === 'missing')
    rows.push(row('sudo', false, `no sudo on ${t.name}`, `install sudo on ${t.name} (apt-get install sudo), or log in as root`));
  else
    rows.push(
      row(
        'sudo',
        false,
        `sudo asks ${a.sshUser} for a password${p.sudoSays ? ` (${p.sudoSays})` : ''}`,
        `on ${t.name}, as root: echo '${a.sshUser} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/hasetup; chmod 440 /etc/sudoers.d/hasetup`,
      ),
    );

  const has = carrier(f, t.address);
  if (t.group === 'lb') {
    const iface = f.interfaces.find((i) => i.name === a.interface);
    const elsewhere = has
      ? `set the LB interface to ${has.name}, which carries ${t.address}`
      : `give the interface that carries ${t.address}`;
    if (!iface)
      rows.push(
        row('interface', false, `no interface ${a.interface} (it has ${f.interfaces.map((i) => i.name).join(', ') || 'none'})`, elsewhere),
      );
    else if (!iface.addresses.some((x) => x.split('/')[0] === t.address))
      rows.push(
        row(
          'interface',
          false,
          `${a.interface} does not carry ${t.address} (it has ${v4(iface.addresses).join(', ') || 'no IPv4 address'})`,
          elsewhere,
        ),
      );
    else rows.push(row('interface', true, `${a.interface} carries ${t.address}/${has?.prefix}`));
  } else if (has) rows.push(row('address', true, `${t.address} on ${has.name}`));
  else
    rows.push(
      row(
        'address',
        false,
        `${t.address} is not an address of ${t.name} (it has ${v4(f.interfaces.flatMap((i) => i.addresses)).join(', ') || 'none'})`,
        `give ${t.name}'s own address, the one the other hosts reach it on`,
      ),
    );

  const need = NEEDS[t.group];
  rows.push(
    f.memoryMb >= need.memoryMb
      ? row('memory', true, `${mib(f.memoryMb)} (a ${need.role} needs ${mib(need.memoryMb)})`)
      : row(
          'memory',
          false,
          `${mib(f.memoryMb)}: a ${need.role} needs ${mib(need.memoryMb)}`,
          `give ${t.name} at least ${mib(need.memoryMb)} of memory`,
        ),
  );
  if (p.diskFreeMb === null) rows.push(row('disk', null, 'free space on /var not measured (no df)'));
  else
    rows.push(
      p.diskFreeMb >= need.diskMb
        ? row('disk', true, `${mib(p.diskFreeMb)} free on /var (needs ${mib(need.diskMb)})`)
        : row(
            'disk',
            false,
            `${mib(p.diskFreeMb)} free on /var: a ${need.role} needs ${mib(need.diskMb)}`,
            `free or add space on ${t.name}'s /var`,
          ),
    );

  if (p.controller)
    rows.push(
      cidrsContain(a.adminCidrs, p.controller)
        ? row('firewall', true, `SSH from this machine (${p.controller} as ${t.name} sees it) stays allowed`)
        : row(
            'firewall',
            false,
            `SSH from this machine (${p.controller} as ${t.name} sees it) would be refused: it is outside the admin networks`,
            `add ${p.controller}/32 to the admin networks`,
          ),
    );

  if (t.group === 'lb') {
    const v = parseCidr(a.vip);
    if (v && has && has.prefix !== v.prefix)
      rows.push(
        row(
          'vip',
          false,
          `the VIP is a /${v.prefix} but ${t.name}'s subnet is a /${has.prefix}`,
          `give the VIP as ${v.address}/${has.prefix}`,
        ),
      );
    else if (v && vip) {
      if (vip.state === 'held') rows.push(row('vip', true, `${v.address} is already on ${vip.by} (this cluster's VIP: it runs)`));
      else if (vip.state === 'in use')
        rows.push(
          row(
            'vip',
            false,
            `${v.address} answers on the network (seen from ${t.name}): another device has it`,
            'choose a free address for the VIP',
          ),
        );
      else if (vip.state === 'free') rows.push(row('vip', true, `${v.address} is free (no answer to ping or ARP from ${t.name})`));
      else rows.push(row('vip', null, `${v.address} not checked: ${'why' in vip ? vip.why : vip.state}`));
    }
  }
  return rows;
}

/** Problems between answers (an LB address changed after the VIP was chosen, for one). */
export function answerRows(a: Answers): Row[] {
  const named = (g: Group) => a.hosts[g].map((h, i) => ({ label: `${g}${i}`, name: h.name, address: h.address }));
  const v = validVip(a.vip, named('lb'), [...named('lb'), ...named('web'), ...named('db')]);
  return v === true ? [] : [{ host: 'answers', check: 'vip', ok: false, result: v, fix: 'change the VIP' }];
}

export const problems = (rows: Row[]): Row[] => rows.filter((r) => r.ok === false);

/**
 * The summary table: a host whose checks all passed on one line (with its host key), the others
 * check by check, each problem followed by what to do.
 */
export function renderTable(rows: Row[], opts: { unicode: boolean }): string {
  const mark = (ok: boolean | null) =>
    opts.unicode ? (ok === true ? '✔' : ok === false ? '✖' : '-') : ok === true ? 'ok' : ok === false ? 'PROBLEM' : '-';
  const hosts = [...new Set(rows.map((r) => r.host))];
  const wh = Math.max(4, ...hosts.map((h) => h.length));
  const wc = Math.max(5, ...rows.map((r) => r.check.length));
  const wm = Math.max(...[true, false, null].map((x) => mark(x).length));
  const out = [`${'HOST'.padEnd(wh)}  ${'CHECK'.padEnd(wc)}  ${''.padEnd(wm)}  RESULT`];
  for (const h of hosts) {
    const mine = rows.filter((r) => r.host === h);
    if (mine.every((r) => r.ok === true)) {
      const key = mine.find((r) => r.check === 'host key');
      out.push(
        `${h.padEnd(wh)}  ${'all'.padEnd(wc)}  ${mark(true).padEnd(wm)}  ${mine.length} checks passed${key ? `, key ${key.result}` : ''}`,
      );
      continue;
    }
    mine.forEach((r, i) => {
      out.push(`${(i === 0 ? h : '').padEnd(wh)}  ${r.check.padEnd(wc)}  ${mark(r.ok).padEnd(wm)}  ${r.result}`);
      if (r.fix) out.push(`${''.padEnd(wh + wc + wm + 6)}${opts.unicode ? '→' : '->'} ${r.fix}`);
    });
  }
  return out.join('\n');
}
