// Role app: the PHP pool's sizing formula and what the role renders for a web node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CAPACITY, phpSizing } from '../../../roles/sizing.ts';
import app from '../../../roles/app/index.ts';
import { roleContext } from '../../../cli/engine/role.ts';
import type { Facts } from '../../../cli/engine/facts.ts';
import { fixtureInventory } from '../../helpers/fixture-role.ts';

test('php sizing: 1 GB -> (1024 - 256) x 0.5 / 40 = 9 children; the floor of 2; capped by a fixed Apache', () => {
  assert.equal(phpSizing(1024, 'auto').maxChildren, 9);
  assert.match(phpSizing(1024, 'auto').explain, /\(memory 1024 MB - reserve 256 MB\) x 0.5 = 384 MB \/ 40 MB per child = 9/);
  assert.equal(phpSizing(512, 'auto').maxChildren, 3);
  assert.equal(phpSizing(128, 'auto').maxChildren, CAPACITY.phpMinChildren);
  assert.equal(phpSizing(65536, 'auto').maxChildren, 614, 'Apache auto grows with the pool');
  // Apache fixed at 100 with 2 LBs: 100 - (2 x 2 + 1 + 10) = 85
  assert.equal(phpSizing(65536, 'auto', 100, 2).maxChildren, 85);
  assert.match(phpSizing(65536, 'auto', 100, 2).explain, /capped at roles\.apache\.workers 100 - 15 = 85/);
  assert.equal(phpSizing(512, 12).maxChildren, 12);
  assert.throws(() => phpSizing(512, 0), /positive integer/);
});

test('php sizing: FPM accepts the dynamic numbers (min_spare <= start <= max_spare <= max_children), more memory never fewer children', () => {
  let last = 0;
  for (let mem = 0; mem <= 65_536; mem += 101) {
    const s = phpSizing(mem, 'auto');
    assert.ok(s.minSpareServers <= s.startServers && s.startServers <= s.maxSpareServers && s.maxSpareServers <= s.maxChildren, `${mem}`);
    assert.ok(s.maxChildren >= last);
    last = s.maxChildren;
  }
  for (const n of [1, 2, 3, 5, 17, 500]) {
    const s = phpSizing(0, n);
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
