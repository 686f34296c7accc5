// The lab's network: a bridge alone in a namespace of its own, one namespace per host and one for the
// controller ("ctl"), each joined to the bridge by a veth pair whose inside end is eth0. Nothing in it
// is linked to the machine's own interfaces, so no lab packet can leave it.
import { existsSync } from 'node:fs';
import { CTL_ADDRESS, PREFIX_LEN, type LabConfig } from './config.ts';
import { run, runOk } from './proc.ts';

export const bridgeNs = (cfg: LabConfig): string => `${cfg.prefix}br`;
export const ctlNs = (cfg: LabConfig): string => `${cfg.prefix}ctl`;
export const hostNs = (cfg: LabConfig, host: string): string => `${cfg.prefix}${host}`;
export const netnsPath = (ns: string): string => `/run/netns/${ns}`;
export const netnsExists = (ns: string): boolean => existsSync(netnsPath(ns));

/** Creates a namespace; `record` is called before creation so a failure half-way is still cleaned up. */
async function addNs(ns: string, record: (ns: string) => void): Promise<void> {
  if (netnsExists(ns))
    throw new Error(
      `network namespace ${ns} already exists: another lab of the same name is running, or one was left behind without its state file (then remove it: ip netns delete ${ns})`,
    );
  record(ns);
  await runOk('ip', ['netns', 'add', ns]);
  await runOk('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
}

export async function createBridge(cfg: LabConfig, record: (ns: string) => void): Promise<void> {
  const br = bridgeNs(cfg);
  await addNs(br, record);
  await runOk('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
  await runOk('ip', ['-n', br, 'link', 'set', 'br0', 'up']);
}

/** A namespace with eth0 at `address`/24 on the lab's bridge. */
export async function createNode(cfg: LabConfig, ns: string, tag: string, address: string, record: (ns: string) => void): Promise<void> {
  const br = bridgeNs(cfg);
  await addNs(ns, record);
  const port = `v-${tag}`.slice(0, 15);
  await runOk('ip', ['-n', br, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  await runOk('ip', ['-n', br, 'link', 'set', port, 'master', 'br0', 'up']);
  await runOk('ip', ['-n', ns, 'addr', 'add', `${address}/${PREFIX_LEN}`, 'dev', 'eth0']);
  await runOk('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
}

export const createCtl = (cfg: LabConfig, record: (ns: string) => void): Promise<void> =>
  createNode(cfg, ctlNs(cfg), 'ctl', CTL_ADDRESS, record);

/** Deletes a namespace this lab created (its veth goes with it; the bridge goes with the bridge's). */
export async function deleteNs(ns: string): Promise<void> {
  if (!netnsExists(ns)) return;
  const r = await run('ip', ['netns', 'delete', ns]);
  if (r.code !== 0 && netnsExists(ns)) throw new Error(`cannot delete network namespace ${ns}: ${r.stderr.trim()}`);
}
