// Role app: the PHP pool's sizing formula and what the role renders for a web node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { phpSizing, PHP_SIZING } from '../../../roles/app/sizing.ts';
import app from '../../../roles/app/index.ts';
import { roleContext } from '../../../cli/engine/role.ts';
import type { Facts } from '../../../cli/engine/facts.ts';
import { fixtureInventory } from '../../helpers/fixture-role.ts';

test('php sizing: 1 GB -> (1024 - 256) x 0.5 / 40 = 9 children; the floor of 2; capped by Apache', () => {
  assert.equal(phpSizing(1024, 'auto', 600).maxChildren, 9);
  assert.match(phpSizing(1024, 'auto', 600).explain, /\(memory 1024 MB - reserve 256 MB\) x 0.5 = 384 MB \/ 40 MB per child = 9/);
  assert.equal(phpSizing(128, 'auto', 50).maxChildren, PHP_SIZING.minChildren);
  assert.equal(phpSizing(65536, 'auto', 100).maxChildren, 100);
  assert.match(phpSizing(65536, 'auto', 100).explain, /capped at Apache's MaxRequestWorkers 100/);
  assert.equal(phpSizing(512, 12, 50).maxChildren, 12);
  assert.throws(() => phpSizing(512, 0, 50), /positive integer/);
});

test('php sizing: FPM accepts the dynamic numbers (min_spare <= start <= max_spare <= max_children), more memory never fewer children', () => {
  let last = 0;
  for (let mem = 0; mem <= 65_536; mem += 101) {
    const s = phpSizing(mem, 'auto', 100_000);
    assert.ok(s.minSpareServers <= s.startServers && s.startServers <= s.maxSpareServers && s.maxSpareServers <= s.maxChildren, `${mem}`);
    assert.ok(s.maxChildren >= last);
    last = s.maxChildren;
  }
  for (const n of [1, 2, 3, 5, 17, 500]) {
    const s = phpSizing(0, n, 1);
    assert.ok(s.minSpareServers <= s.startServers && s.startServers <= s.maxSpareServers && s.maxSpareServers <= s.maxChildren, `${n}`);
  }
});

test('app role: the pool sized from the facts, credentials 0640 for the pool user and never in a diff; off with php: false', () => {
  const inv = fixtureInventory([{ name: 'web01', address: '10.0.0.21' }]);
  inv.hosts.push({
    name: 'db01',
    address: '10.0.0.31',
    group: 'db',
    primary: true,
    serverId: 1,
    ssh: { host: '10.0.0.31', user: 'root', port: 22, become: false, connectTimeout: 3 },
  });
  const facts = { hostname: 'web01', memoryMb: 1024 } as unknown as Facts;
  const ctx = roleContext(app, inv.hosts[0], inv, facts);
  const tasks = app.tasks(ctx);
  const pool = tasks.find((t) => t.name.startsWith('pool hasetup'))!;
  assert.equal(pool.name, 'pool hasetup: pm.max_children 9');
  const creds = tasks.find((t) => t.name.startsWith('database credentials'))!;
  const plan = creds.op.plan('absent', { facts, earlierChange: false });
  assert.ok(plan.changed);
  assert.doesNotMatch(plan.diff ?? '', new RegExp(inv.secrets.mysqlAppPassword));
  assert.match(String(plan.changed && plan.stdin), /host = "10\.0\.0\.31"/);
  assert.match(plan.changed ? plan.script : '', /chown root:hasetup-app "\$tmp"\nchmod 640/);
  assert.equal(app.appliesTo(inv.hosts[0], inv), true);
  assert.equal(app.appliesTo(inv.hosts[0], { ...inv, roles: { ...inv.roles, app: { ...inv.roles.app, php: false } } }), false);
});
