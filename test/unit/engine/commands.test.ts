// The role registry (roles/index.ts): --help names the roles without loading them, and each entry
// loads the role it names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROLES, ROLE_NAMES } from '../../../roles/index.ts';
import { loadRoles } from '../../../cli/engine/registry.ts';

test('every registry entry loads the role it names, in the order apply runs them', async () => {
  const roles = await loadRoles(ROLES);
  assert.deepEqual(
    roles.map((r) => r.name),
    ROLE_NAMES,
  );
  assert.deepEqual(ROLE_NAMES.slice(0, 2), ['common', 'firewall']);
});

test('a registry naming a role twice, or loading another role than it names, is refused', async () => {
  const common = ROLES[0];
  await assert.rejects(loadRoles([common, common]), /role common is listed twice/);
  await assert.rejects(loadRoles([{ name: 'web', load: common.load }]), /the registry's role "web" loads a role named "common"/);
});
