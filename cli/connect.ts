// Loading an inventory for a command, and opening a host's SSH transport as the inventory says.
import { loadInventory, InventoryError } from '../inventory/load.ts';
import type { Host, Inventory } from '../inventory/types.ts';
import { UserError } from './errors.ts';
import { SshTransport, type Transport } from './engine/transport.ts';

export function connectHost(inv: Inventory, host: Host): Promise<Transport> {
  return SshTransport.connect({
    name: host.name,
    host: host.ssh.host,
    port: host.ssh.port,
    user: host.ssh.user,
    privateKey: host.ssh.privateKey,
    become: host.ssh.become,
    connectTimeout: host.ssh.connectTimeout,
    knownHosts: host.ssh.knownHosts ?? `${inv.file.replace(/[^/]*$/, '')}.hasetup/known_hosts`,
  });
}

export async function loadOrExplain(file: string): Promise<Inventory> {
  try {
    return await loadInventory(file);
  } catch (e) {
    if (e instanceof InventoryError) throw new UserError(`invalid inventory (nothing was changed on any host):\n${(e as Error).message}`);
    throw e;
  }
}
