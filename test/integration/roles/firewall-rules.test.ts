// The firewall role's rules for each host of the lab inventory: nftables itself accepts them (nft -c in
// a network namespace of the test's own). What each tier lets in: test/unit/roles/firewall.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { labInventory, rulesFor } from '../../helpers/firewall.ts';
import { prerequisites, rootUnavailable, commandUnavailable } from '../../helpers/env.ts';

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
