// The inventory `lab up` writes for `hasetup apply`: the lab's hosts, its SSH key and known_hosts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { stringify } from 'yaml';
import { CTL_ADDRESS, VIP, type LabHost } from './config.ts';

/** A path as the inventory should hold it: relative to the inventory's folder when below it. */
function fromInventory(inventory: string, path: string): string {
  const rel = relative(dirname(inventory), path);
  return rel.startsWith('..') || isAbsolute(rel) ? path : `./${rel}`;
}

export interface LabInventoryOptions {
  runtime?: 'bundled' | 'haproxy';
}

export function labInventoryText(
  inventory: string,
  hosts: LabHost[],
  key: string,
  knownHosts: string,
  opts: LabInventoryOptions = {},
): string {
  const group = (g: string) => hosts.filter((h) => h.group === g);
  const doc = {
    cluster: 'lab',
    vip: { address: VIP, interface: 'eth0' },
    vrrp: { router_id: 51 },
    ...(opts.runtime ? { runtime: opts.runtime } : {}),
    ssh: {
      user: 'root',
      port: 22,
      private_key: fromInventory(inventory, key),
      known_hosts: fromInventory(inventory, knownHosts),
      connect_timeout: 10,
    },
    hosts: {
      lb: group('lb').map((h) => ({ name: h.name, address: h.address, priority: h.priority })),
      web: group('web').map((h) => ({ name: h.name, address: h.address })),
      db: group('db').map((h) => ({ name: h.name, address: h.address, server_id: h.serverId })),
    },
    roles: { firewall: { admin_cidrs: [`${CTL_ADDRESS}/32`] } },
    // The failover test's steady load must be one that a single web node carries when the other
    // fails (N-1): the lab's web nodes are half a core each, and with PHP's demo page one of them
    // saturates between 100 and 200 req/s (at 200 the web scenarios tested an overload, not a failover).
    failover_test: { rate: 100 },
  };
  return (
    '# Written by `hasetup lab up`: the lab hosts (systemd containers on this machine). They are reached\n' +
    "# from the lab's controller namespace: `hasetup lab exec -- hasetup apply <this file>`.\n" +
    stringify(doc, { lineWidth: 0 })
  );
}

export function writeLabInventory(path: string, hosts: LabHost[], key: string, knownHosts: string, opts: LabInventoryOptions = {}): string {
  const inventory = resolve(path);
  mkdirSync(dirname(inventory), { recursive: true });
  writeFileSync(inventory, labInventoryText(inventory, hosts, key, knownHosts, opts));
  return inventory;
}
