// A new role is one folder and one registry entry: a role outside roles/ (test/fixtures/roles/motd)
// is loaded from an entry, applied with its own template, and its packages and services are read
// with the facts (what `hasetup status` shows) without any other file naming it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROLES } from '../../../roles/index.ts';
import { loadRoles, type RoleEntry } from '../../../cli/engine/registry.ts';
import { interestOf, run } from '../../../cli/engine/runner.ts';
import { factsScript } from '../../../cli/engine/facts.ts';
import { LocalTransport } from '../../../cli/engine/transport.ts';
import { PlainReporter } from '../../../cli/engine/report.ts';
import { Redactor } from '../../../cli/engine/redact.ts';
import { fixtureInventory } from '../../helpers/fixture-role.ts';

const dir = fileURLToPath(new URL('../../fixtures/roles/motd', import.meta.url));

test('a role in a folder of its own, added by one registry entry, is applied; its packages and services are read with the facts', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hasetup-registry-'));
  process.env.HASETUP_FIXTURE_ROOT = root;
  try {
    const entry: RoleEntry = { name: 'motd', load: () => import('../../fixtures/roles/motd/index.ts'), dir };
    const roles = await loadRoles([...ROLES, entry]);
    const motd = roles.filter((r) => r.name === 'motd');
    const inv = fixtureInventory([{ name: 'w1', address: '127.0.0.1' }]);
    let out = '';
    const r = await run({
      inventory: inv,
      roles: motd,
      connect: async () => new LocalTransport(),
      reporter: new PlainReporter(false, (s) => (out += s)),
      redactor: new Redactor([]),
      stateDir: join(root, 'state'),
    });
    assert.equal(r.hosts.w1.changed, 1, out);
    assert.equal(readFileSync(join(root, 'w1.motd'), 'utf8'), 'Welcome to w1 of test.\n');
    const interest = interestOf(roles, inv.hosts[0], inv);
    assert.ok(interest.packages.includes('hasetup-fixture-motd') && interest.services.includes('hasetup-fixture-motd'));
    assert.match(factsScript('__M__', interest), /hasetup-fixture-motd\.service/);
  } finally {
    delete process.env.HASETUP_FIXTURE_ROOT;
    rmSync(root, { recursive: true, force: true });
  }
});
