// renderInventoryYaml: a commented inventory.yaml from a plain object in the file's own shape
// (snake_case keys, as InventoryFile), for the init wizard and the lab. Its output loads with
// loadInventory when the model is valid (checkInventoryText tells why when it is not).
import { Document, isMap, isScalar, isSeq, type Node } from 'yaml';
import type { InventoryFile } from './schema.ts';

const ORDER = ['cluster', 'vip', 'vrrp', 'runtime', 'ssh', 'hosts', 'roles'] as const;

const COMMENTS: Record<(typeof ORDER)[number], string> = {
  cluster: 'Cluster name: lower-case letters, digits and inner dashes.',
  vip: "The virtual IP (address/prefix) the two load balancers share, and their interface that carries it.\nIt must be an unused address in the load balancers' subnet.",
  vrrp: 'VRRP: router_id 1-255 (unique on the LAN), advert_int in seconds (fractional only with version 3),\nversion 2 or 3, unicast: true to send to the peer LB instead of multicast.',
  runtime: "bundled: hasetup's own proxy and VRRP daemon; haproxy: Debian's haproxy and keepalived.",
  ssh: "SSH defaults for every host (a host's own ssh: { ... } overrides them, and host: sets what to connect\nto). Paths are relative to this file, ~ is expanded; become: sudo (default when user is not root).",
  hosts:
    'lb: exactly 2 load balancers (the higher priority holds the VIP; default 150 and 100).\nweb: 1 or more Apache nodes. db: the first is the MySQL primary, the others replicate from it\n(server_id default 1, 2, 3...).',
  roles:
    'Role options; anything left out takes its default. firewall.admin_cidrs: who may reach SSH and the\nstats page. Passwords live in the secrets file next to this one (mode 0600), generated when missing.',
};

// Keys inside the sections, in the order of inventory/README.md's table (a key not listed keeps its place after them).
const NESTED_ORDER: Record<string, string[]> = {
  vip: ['address', 'interface'],
  vrrp: ['router_id', 'advert_int', 'version', 'unicast'],
  ssh: ['user', 'port', 'private_key', 'become', 'connect_timeout', 'known_hosts'],
  hosts: ['lb', 'web', 'db'],
  roles: ['proxy', 'apache', 'mysql', 'firewall'],
  'roles.proxy': ['balance', 'port', 'maxconn', 'health_check', 'timeouts', 'stats'],
  'roles.mysql': ['app_database', 'app_user', 'max_connections', 'binlog_format'],
};

// One-line comments on nested keys, where a hand editor needs to know more than the key says.
const NESTED_COMMENTS: Record<string, string> = {
  'vrrp.router_id': 'unique among the VRRP routers of this network',
  'vrrp.unicast': "many providers block multicast: true sends the adverts to the other LB's address",
  'ssh.private_key': 'without it: the keys of the SSH agent',
  'ssh.known_hosts': 'host keys, trusted on first use and checked on every connection after',
  'roles.firewall.admin_cidrs': 'keep the address hasetup runs from in it, or SSH from there is refused',
};

function orderKeys(v: unknown, path: string): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  const m = v as Record<string, unknown>;
  const order = NESTED_ORDER[path] ?? [];
  const out: Record<string, unknown> = {};
  for (const k of [...order, ...Object.keys(m)]) if (k in m && !(k in out)) out[k] = orderKeys(m[k], path ? `${path}.${k}` : k);
  return out;
}

function prune(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(prune);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = prune(x);
    return out;
  }
  return v;
}

function setFlow(n: unknown): void {
  if (isMap(n) || isSeq(n)) n.flow = true;
}

/** A commented inventory.yaml for the model (keys in the order of inventory/README.md, one line per host). */
export function renderInventoryYaml(model: InventoryFile, opts: { header?: string } = {}): string {
  const m = prune(model) as Record<string, unknown>;
  const ordered: Record<string, unknown> = {};
  for (const k of ORDER) if (m[k] !== undefined) ordered[k] = orderKeys(m[k], k);
  for (const k of Object.keys(m)) if (!(k in ordered)) ordered[k] = m[k];

  const doc = new Document(ordered);
  doc.commentBefore = (opts.header ?? 'hasetup inventory (see README.md for every key and its default).')
    .split('\n')
    .map((l) => ` ${l}`)
    .join('\n');
  const root = doc.contents;
  if (isMap(root)) {
    for (const pair of root.items) {
      const key = String(isScalar(pair.key) ? pair.key.value : pair.key) as (typeof ORDER)[number];
      const comment = COMMENTS[key];
      if (comment && isScalar(pair.key))
        (pair.key as Node).commentBefore = comment
          .split('\n')
          .map((l) => ` ${l}`)
          .join('\n');
    }
  }
  for (const [path, comment] of Object.entries(NESTED_COMMENTS)) {
    const keys = path.split('.');
    const parent = doc.getIn(keys.slice(0, -1));
    const pair = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && p.key.value === keys[keys.length - 1]) : undefined;
    if (pair && isScalar(pair.key) && !(isMap(parent) && parent.flow)) pair.key.commentBefore = ` ${comment}`;
  }
  const hosts = doc.get('hosts');
  if (isMap(hosts)) for (const g of hosts.items) if (isSeq(g.value)) g.value.items.forEach(setFlow);
  for (const k of ['health_check', 'timeouts', 'stats']) setFlow(doc.getIn(['roles', 'proxy', k]));
  setFlow(doc.getIn(['roles', 'firewall', 'admin_cidrs']));
  return doc.toString({ lineWidth: 0, flowCollectionPadding: true });
}
