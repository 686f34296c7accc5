// The firewall role's rules for each host of the lab inventory: what each tier lets in, and that
// nftables itself accepts them (nft -c in a network namespace of the test's own).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInventory } from '../../../inventory/load.ts';
import { roleContext } from '../../../cli/engine/role.ts';
import firewall from '../../../roles/firewall/index.ts';
import type { Facts } from '../../../cli/engine/facts.ts';
import type { Inventory } from '../../../inventory/types.ts';
import { prerequisites, rootUnavailable, commandUnavailable } from '../../helpers/env.ts';

const facts = { container: true, memoryMb: 1024 } as unknown as Facts;

async function labInventory(): Promise<{ inv: Inventory; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'hasetup-fw-'));
  copyFileSync('inventory/examples/lab.yaml', join(dir, 'inventory.yaml'));
  const inv = await loadInventory(join(dir, 'inventory.yaml'));
  return { inv, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function rulesFor(inv: Inventory, name: string): string {
  const host = inv.hosts.find((h) => h.name === name);
  assert.ok(host);
  const tasks = firewall.tasks(roleContext(firewall, host, inv, facts));
  const plan = tasks[1].op.plan('\n\n', { facts, earlierChange: false });
  assert.ok(plan.changed);
  return plan.stdin as string;
}

test('each tier lets in only what it must', async () => {
  const { inv, cleanup } = await labInventory();
  try {
    const lb = rulesFor(inv, 'lb01');
    assert.match(lb, /tcp dport 22 ip saddr @admin accept/);
    assert.match(lb, /elements = \{ 10\.213\.0\.10\/32 \}/);
    assert.match(lb, /^\s*tcp dport 80 accept$/m);
    assert.match(lb, /ip protocol vrrp ip saddr \{ 10\.213\.0\.12 \} accept/);
    assert.doesNotMatch(lb, /3306/);
    const web = rulesFor(inv, 'web02');
    assert.match(web, /tcp dport 80 ip saddr \{ 10\.213\.0\.11, 10\.213\.0\.12 \} accept/);
    assert.doesNotMatch(web, /vrrp|^\s*tcp dport 80 accept$/m);
    const db = rulesFor(inv, 'db01');
    assert.match(db, /tcp dport 3306 ip saddr \{ 10\.213\.0\.21, 10\.213\.0\.22 \} accept/);
    assert.doesNotMatch(db, /dport 80/);
    for (const r of [lb, web, db]) assert.match(r, /policy drop/);
    assert.match(lb, /comment "hasetup:[0-9a-f]{16}"/);
  } finally {
    cleanup();
  }
});

test('same inventory, same rules: the probe sees no change once loaded', async () => {
  const { inv, cleanup } = await labInventory();
  try {
    const host = inv.hosts[0];
    const op = firewall.tasks(roleContext(firewall, host, inv, facts))[1].op;
    const plan = op.plan('\n\n', { facts, earlierChange: false });
    assert.ok(plan.changed);
    const hash = /comment "hasetup:([0-9a-f]{16})"/.exec(plan.stdin as string)?.[1];
    assert.deepEqual(op.plan(`hasetup:${hash}\n\nhasetup:${hash}`, { facts, earlierChange: false }), { changed: false });
    assert.ok(plan.confirm, 'a firewall change must be confirmed by a reconnect');
  } finally {
    cleanup();
  }
});

test('nftables accepts the rules of every host', async (t) => {
  if (!prerequisites(t, rootUnavailable(), commandUnavailable('nft'))) return;
  const { inv, cleanup } = await labInventory();
  const ns = `hsfw-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    for (const h of inv.hosts) {
      const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-c', '-f', '-'], { input: rulesFor(inv, h.name), encoding: 'utf8' });
      assert.equal(r.status, 0, `${h.name}: ${r.stderr}`);
    }
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
    cleanup();
  }
});
