// From the wizard's answers to the inventory it writes: every default taken from the inventory
// schema itself (so a default changed there is the wizard's default too), written out so that the
// file shows every setting a user may want to edit.
import { dirname } from 'node:path';
import { DEFAULT_LB_PRIORITIES } from '../../inventory/checks.ts';
import { expandPath } from '../../inventory/load.ts';
import { inventorySchema, sshDefaultsSchema, type InventoryFile } from '../../inventory/schema.ts';
import type { Answers, HostAnswer } from './answers.ts';

/** Where the hosts' keys are recorded and checked: where apply reads them. */
export function knownHostsPath(a: Pick<Answers, 'knownHosts'>, inventoryFile: string): string {
  return expandPath(a.knownHosts ?? sshDefaultsSchema.parse({}).known_hosts, dirname(inventoryFile));
}

const host = (h: HostAnswer) => ({ name: h.name, address: h.address, ...(h.sshHost ? { ssh: { host: h.sshHost } } : {}) });

export function inventoryModel(a: Answers): InventoryFile {
  const hosts = {
    lb: a.hosts.lb.map((h, i) => ({ ...host(h), priority: DEFAULT_LB_PRIORITIES[i] })),
    web: a.hosts.web.map(host),
    db: a.hosts.db.map((h, i) => ({ ...host(h), server_id: i + 1 })),
  };
  const required = {
    cluster: a.cluster,
    vip: { address: a.vip, interface: a.interface },
    hosts,
    roles: { firewall: { admin_cidrs: a.adminCidrs } },
  };
  const d = inventorySchema.parse(required); // the schema's defaults for everything else
  const { health_check: _h, timeouts: _t, stats: _s, ...proxy } = d.roles.proxy;
  return {
    cluster: a.cluster,
    vip: required.vip,
    vrrp: { ...d.vrrp, unicast: a.vrrp === 'unicast' },
    runtime: a.runtime,
    ssh: {
      user: a.sshUser,
      port: a.sshPort,
      ...(a.sshKey ? { private_key: a.sshKey } : {}),
      ...(a.sshUser !== 'root' ? { become: true } : {}),
      connect_timeout: a.connectTimeout,
      known_hosts: a.knownHosts ?? d.ssh.known_hosts,
    },
    hosts,
    roles: { proxy, apache: d.roles.apache, mysql: d.roles.mysql, firewall: required.roles.firewall },
  };
}

export function inventoryHeader(date = new Date()): string {
  return [
    `Written by \`hasetup init\` on ${date.toISOString().slice(0, 10)}. Edit it by hand as you like: \`hasetup apply\``,
    'checks it before it changes anything. Every key and its default: inventory/README.md in hasetup.',
  ].join('\n');
}
