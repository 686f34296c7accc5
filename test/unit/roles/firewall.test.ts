// The firewall role's rules for each host of the lab inventory: what each tier lets in, and the
// probe that sees loaded rules as unchanged. (nftables accepting them: test/integration/roles.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { facts, labInventory, rulesetOp, rulesFor } from '../../helpers/firewall.ts';

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
    assert.doesNotMatch(lb, /dport 443/, 'HTTPS only when roles.proxy.tls says so');
    const withTls = {
      ...inv,
      roles: { ...inv.roles, proxy: { ...inv.roles.proxy, tls: { port: 443 } as NonNullable<typeof inv.roles.proxy.tls> } },
    };
    assert.match(rulesFor(withTls, 'lb01'), /^\s*tcp dport 443 accept$/m);
    assert.doesNotMatch(rulesFor(withTls, 'web01'), /443/);
  } finally {
    cleanup();
  }
});

test('same inventory, same rules: the probe sees no change once loaded', async () => {
  const { inv, cleanup } = await labInventory();
  try {
    const op = rulesetOp(inv, inv.hosts[0].name);
    const plan = op.plan('\n\n', { facts, earlierChange: false });
    assert.ok(plan.changed);
    const hash = /comment "hasetup:([0-9a-f]{16})"/.exec(plan.stdin as string)?.[1];
    assert.deepEqual(op.plan(`hasetup:${hash}\n\nhasetup:${hash}`, { facts, earlierChange: false }), { changed: false });
    assert.ok(plan.confirm, 'a firewall change must be confirmed by a reconnect');
  } finally {
    cleanup();
  }
});
