// renderInventoryYaml: a commented inventory.yaml from a plain object in the file's own shape
// (snake_case keys, as InventoryFile), for the init wizard and the lab. Its output loads with
// loadInventory when the model is valid (checkInventoryText tells why when it is not).
import { Document, isMap, isScalar, isSeq, type Node } from 'yaml';
import type { InventoryFile } from './schema.ts';

const ORDER = ['cluster', 'vip', 'vrrp', 'runtime', 'ssh', 'hosts', 'roles'] as const;

const COMMENTS: Record<(typeof ORDER)[number], string> = {
  cluster: 'Cluster name: lower-case letters, digits and inner dashes.',
  vip: 'The virtual IP (address/prefix) the two load balancers share, and their interface that carries it.\nIt must be an unused address in the load balancers\' subnet.',
  vrrp:
    'VRRP: router_id 1-255 (unique on the LAN), advert_int in seconds (fractional only with version 3),\nversion 2 or 3, unicast: true to send to the peer LB instead of multicast.',
  runtime: 'bundled: hasetup\'s own proxy and VRRP daemon; haproxy: Debian\'s haproxy and keepalived.',
  ssh:
    'SSH defaults for every host (a host\'s own ssh: { ... } overrides them, and host: sets what to connect\nto). Paths are relative to this file, ~ is expanded; become: sudo (default when user is not root).',
  hosts:
    'lb: exactly 2 load balancers (the higher priority holds the VIP; default 150 and 100).\nweb: 1 or more Apache nodes. db: the first is the MySQL primary, the others replicate from it\n(server_id default 1, 2, 3...).',
  roles:
    'Role options; anything left out takes its default. firewall.admin_cidrs: who may reach SSH and the\nstats page. Passwords live in the secrets file next to this one (mode 0600), generated when missing.',
};

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

/** A commented inventory.yaml for the model (keys in the usual order, one line per host). */
export function renderInventoryYaml(model: InventoryFile, opts: { header?: string } = {}): string {
  const m = prune(model) as Record<string, unknown>;
  const ordered: Record<string, unknown> = {};
  for (const k of ORDER) if (m[k] !== undefined) ordered[k] = m[k];
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
      if (comment && isScalar(pair.key)) (pair.key as Node).commentBefore = comment.split('\n').map((l) => ` ${l}`).join('\n');
    }
  }
  const hosts = doc.get('hosts');
  if (isMap(hosts)) for (const g of hosts.items) if (isSeq(g.value)) g.value.items.forEach(setFlow);
  for (const k of ['health_check', 'timeouts', 'stats']) setFlow(doc.getIn(['roles', 'proxy', k]));
  setFlow(doc.getIn(['roles', 'firewall', 'admin_cidrs']));
  return doc.toString({ lineWidth: 0, flowCollectionPadding: true });
}
