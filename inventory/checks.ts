// Cluster-level checks of inventory.yaml, run on the parsed file before any host is contacted.
// They read the raw data defensively (fields of the wrong type are the schema's errors, skipped
// here) so that one run reports schema and cluster errors together.
import { isIPv4, networkOf, parseCidr, maskOf, sameSubnet, ipv4ToInt } from './net.ts';
import type { InventoryIssue, PathSegment, YamlSource } from './errors.ts';
import type { Group } from './types.ts';
import { capacityChecks } from './capacity.ts';

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => v !== null && typeof v === 'object' && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

interface RawHost {
  group: Group;
  index: number;
  path: PathSegment[];
  name?: string;
  address?: string;
  raw: Raw;
}

export const DEFAULT_LB_PRIORITIES = [150, 100];

/**
 * VRRP defaults: version 3 with a 0.2 s advertisement interval, so that a dead master is replaced
 * in 3 x 0.2 s + skew (about 0.72 s for priority 100) instead of the 3.6 s of keepalived's 1 s
 * version 2 default; version 2 defaults to 1 s (it has whole seconds only).
 */
export const DEFAULT_VRRP = { version: 3, advertInt: { 2: 1, 3: 0.2 } } as const;

export function clusterChecks(src: YamlSource): InventoryIssue[] {
  const d = src.data;
  if (!isObj(d)) return [];
  const out: InventoryIssue[] = [];
  const where = (p: PathSegment[]) => `hosts.${p[1]}[${p[2]}]`;
  const lineOf = (p: PathSegment[]) => src.at(p).line;

  // Group sizes.
  const hostsRaw = d.hosts;
  const groups: Partial<Record<Group, unknown[]>> = {};
  if (isObj(hostsRaw)) {
    const h = hostsRaw;
    for (const g of ['lb', 'web', 'db'] as const) if (Array.isArray(h[g]) || h[g] === undefined) groups[g] = (h[g] as unknown[]) ?? [];
    const lb = groups.lb;
    if (lb && lb.length > 2) out.push(src.issue(['hosts', 'lb', 2], `expected exactly 2 load balancers, got ${lb.length}`));
    else if (lb && lb.length < 2) out.push(src.issue(['hosts', 'lb'], `expected exactly 2 load balancers, got ${lb.length}`));
    if (groups.web && groups.web.length === 0) out.push(src.issue(['hosts', 'web'], 'expected at least 1 web host, got 0'));
    if (groups.db && groups.db.length === 0)
      out.push(src.issue(['hosts', 'db'], 'expected at least 1 db host (the first is the MySQL primary), got 0'));
  }

  const hosts: RawHost[] = [];
  for (const g of ['lb', 'web', 'db'] as const) {
    (groups[g] ?? []).forEach((h, index) => {
      if (!isObj(h)) return;
      hosts.push({
        group: g,
        index,
        path: ['hosts', g, index],
        name: typeof h.name === 'string' ? h.name : undefined,
        address: typeof h.address === 'string' && isIPv4(h.address) ? h.address : undefined,
        raw: h,
      });
    });
  }

  // Duplicate names and addresses, reported at the later occurrence.
  const names = new Map<string, RawHost>();
  const addrs = new Map<string, RawHost>();
  for (const h of hosts) {
    if (h.name !== undefined) {
      const first = names.get(h.name);
      if (first)
        out.push(
          src.issue(
            [...h.path, 'name'],
            `duplicate host name "${h.name}": already used by ${where(first.path)} (line ${lineOf([...first.path, 'name'])})`,
          ),
        );
      else names.set(h.name, h);
    }
    if (h.address !== undefined) {
      const first = addrs.get(h.address);
      if (first)
        out.push(
          src.issue(
            [...h.path, 'address'],
            `duplicate address ${h.address}: already used by ${first.name ?? where(first.path)} (line ${lineOf([...first.path, 'address'])})`,
          ),
        );
      else addrs.set(h.address, h);
    }
  }

  // The VIP: inside the load balancers' subnet, not a host's address, not the network or broadcast address.
  const vip = isObj(d.vip) && typeof d.vip.address === 'string' ? parseCidr(d.vip.address) : null;
  if (vip && vip.prefix >= 1) {
    const vp: PathSegment[] = ['vip', 'address'];
    for (const h of hosts.filter((x) => x.group === 'lb' && x.address !== undefined)) {
      if (!sameSubnet(h.address!, vip.address, vip.prefix))
        out.push(
          src.issue(
            vp,
            `${vip.address}/${vip.prefix} is outside the subnet of load balancer ${h.name ?? where(h.path)} (${h.address}, line ${lineOf([...h.path, 'address'])}): the VIP must be in the load balancers' subnet`,
          ),
        );
    }
    const owner = addrs.get(vip.address);
    if (owner)
      out.push(
        src.issue(
          vp,
          `${vip.address} is also the address of ${owner.name ?? where(owner.path)} (line ${lineOf([...owner.path, 'address'])}): the VIP must be an unused address`,
        ),
      );
    if (vip.prefix <= 30) {
      const n = ipv4ToInt(vip.address)!;
      const net = networkOf(vip.address, vip.prefix);
      const bcast = (net | (~maskOf(vip.prefix) >>> 0)) >>> 0;
      if (n === net) out.push(src.issue(vp, `${vip.address} is the network address of its /${vip.prefix} subnet, not usable as the VIP`));
      if (n === bcast)
        out.push(src.issue(vp, `${vip.address} is the broadcast address of its /${vip.prefix} subnet, not usable as the VIP`));
    }
  }

  // The two load balancers need different VRRP priorities (defaults 150 and 100).
  const lbs = hosts.filter((h) => h.group === 'lb' && h.index < 2);
  if (lbs.length === 2) {
    const prio = (h: RawHost) => (h.raw.priority === undefined ? DEFAULT_LB_PRIORITIES[h.index] : h.raw.priority);
    const [p0, p1] = lbs.map(prio);
    if (isInt(p0) && p0 === p1) {
      const at = lbs[1].raw.priority !== undefined ? [...lbs[1].path, 'priority'] : [...lbs[0].path, 'priority'];
      const other = at[2] === 1 ? lbs[0] : lbs[1];
      out.push(
        src.issue(
          at,
          `same VRRP priority as ${other.name ?? where(other.path)} (${p0}${other.raw.priority === undefined ? ', its default' : ''}): the two load balancers need different priorities`,
        ),
      );
    }
  }

  // MySQL server ids (default: 1 for the primary, then 2, 3...) must be unique.
  const ids = new Map<number, RawHost>();
  for (const h of hosts.filter((x) => x.group === 'db')) {
    const explicit = h.raw.server_id !== undefined;
    const id = explicit ? h.raw.server_id : h.index + 1;
    if (!isInt(id)) continue;
    const first = ids.get(id);
    if (first) {
      const firstAt = `${first.name ?? where(first.path)} (line ${lineOf(first.raw.server_id === undefined ? first.path : [...first.path, 'server_id'])}${first.raw.server_id === undefined ? ', by default' : ''})`;
      out.push(
        explicit
          ? src.issue([...h.path, 'server_id'], `duplicate MySQL server id ${id}: already used by ${firstAt}`)
          : src.issue(h.path, `its default MySQL server id ${id} is already used by ${firstAt}: give it a unique server_id`),
      );
    } else ids.set(id, h);
  }

  // advert_int: whole seconds with VRRP version 2; centiseconds up to 40.95 s with version 3.
  if (isObj(d.vrrp) && typeof d.vrrp.advert_int === 'number') {
    const ai = d.vrrp.advert_int;
    const version = d.vrrp.version ?? DEFAULT_VRRP.version;
    if (version === 2 && !Number.isInteger(ai))
      out.push(
        src.issue(['vrrp', 'advert_int'], `expected whole seconds with VRRP version 2 (a fractional interval needs version: 3), got ${ai}`),
      );
    if (version === 3 && ai >= 0.01 && (Math.abs(ai * 100 - Math.round(ai * 100)) > 1e-9 || ai > 40.95))
      out.push(src.issue(['vrrp', 'advert_int'], `expected a multiple of 0.01 seconds from 0.01 to 40.95 with VRRP version 3, got ${ai}`));
  }

  out.push(...tlsChecks(src), ...monitorPortChecks(src), ...capacityChecks(src));
  return out;
}

/** roles.proxy.monitor_port: the LBs' tracker frontend on 127.0.0.1 shares no port with the proxy's others. */
function monitorPortChecks(src: YamlSource): InventoryIssue[] {
  const d = src.data as Raw;
  const roles = isObj(d.roles) ? d.roles : {};
  const proxy = isObj(roles.proxy) ? roles.proxy : {};
  const port = proxy.monitor_port ?? 8405;
  if (!isInt(port)) return [];
  const others: [string, unknown][] = [
    ['the service port (roles.proxy.port)', proxy.port ?? 80],
    ['the stats port (roles.proxy.stats.port)', isObj(proxy.stats) ? proxy.stats.port : undefined],
    ['the HTTPS port (roles.proxy.tls.port)', isObj(proxy.tls) ? (proxy.tls.port ?? 443) : undefined],
  ];
  const clash = others.find(([, p]) => p === port);
  if (!clash) return [];
  return [
    src.issue(
      proxy.monitor_port === undefined ? ['roles', 'proxy'] : ['roles', 'proxy', 'monitor_port'],
      `the tracker's port ${port} (roles.proxy.monitor_port, the proxy's answer to its VRRP tracker on 127.0.0.1) is also ${clash[0]}: give them different ports`,
    ),
  ];
}

/** roles.proxy.tls: its own port, a key only with its certificate, names only for a generated one. */
function tlsChecks(src: YamlSource): InventoryIssue[] {
  const d = src.data as Raw;
  const roles = isObj(d.roles) ? d.roles : {};
  const proxy = isObj(roles.proxy) ? roles.proxy : {};
  const tls = proxy.tls;
  if (!isObj(tls)) return [];
  const out: InventoryIssue[] = [];
  const at = (k: string): PathSegment[] => ['roles', 'proxy', 'tls', k];
  const port = tls.port ?? 443;
  const servicePort = proxy.port ?? 80;
  const statsPort = isObj(proxy.stats) ? proxy.stats.port : undefined;
  if (isInt(port) && port === servicePort)
    out.push(
      src.issue(
        tls.port === undefined ? ['roles', 'proxy', 'tls'] : at('port'),
        `the HTTPS port ${port} is also the service port (roles.proxy.port): give them different ports`,
      ),
    );
  else if (isInt(port) && port === statsPort)
    out.push(
      src.issue(
        tls.port === undefined ? ['roles', 'proxy', 'tls'] : at('port'),
        `the HTTPS port ${port} is also the stats port (roles.proxy.stats.port): give them different ports`,
      ),
    );
  if (tls.redirect === true && isInt(port) && port !== 443)
    out.push(
      src.issue(
        at('redirect'),
        `a redirect to HTTPS keeps the host name, so the client comes to port 443, not ${port}: serve HTTPS on 443 or leave redirect off`,
      ),
    );
  if (tls.key !== undefined && tls.certificate === undefined)
    out.push(
      src.issue(
        at('key'),
        'a key without its certificate: give certificate: too (or neither, for a generated self-signed certificate)',
        'key',
      ),
    );
  if (tls.names !== undefined && tls.certificate !== undefined)
    out.push(src.issue(at('names'), 'names are for the generated certificate only: your certificate carries its own names', 'key'));
  return out;
}
