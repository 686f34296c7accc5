// The firewall role's ruleset for a host of the example lab inventory, as the role would load it.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInventory } from '../../inventory/load.ts';
import { roleContext } from '../../cli/engine/role.ts';
import firewall from '../../roles/firewall/index.ts';
import type { Facts } from '../../cli/engine/facts.ts';
import type { Operation } from '../../cli/engine/ops.ts';
import type { Inventory } from '../../inventory/types.ts';

export const facts = { container: true, memoryMb: 1024, records: {} } as unknown as Facts;

export async function labInventory(): Promise<{ inv: Inventory; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'hasetup-fw-'));
  copyFileSync('inventory/examples/lab.yaml', join(dir, 'inventory.yaml'));
  const inv = await loadInventory(join(dir, 'inventory.yaml'));
  return { inv, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The role's nftables operation for a host (found by its kind, not its place in the list). */
export function rulesetOp(inv: Inventory, name: string): Operation {
  const host = inv.hosts.find((h) => h.name === name);
  assert.ok(host);
  const t = firewall.tasks(roleContext(firewall, host, inv, facts)).find((x) => x.op.kind === 'nftables');
  assert.ok(t, 'the ruleset task');
  return t.op;
}

export function rulesFor(inv: Inventory, name: string): string {
  const plan = rulesetOp(inv, name).plan('\n\n', { facts, earlierChange: false });
  assert.ok(plan.changed);
  return plan.stdin as string;
}
