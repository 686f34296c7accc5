// The CLI's help names the roles without loading them: the list must match cli/roles.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROLE_NAMES } from '../../../cli/commands/apply.ts';
import { ROLES } from '../../../cli/roles.ts';

test('apply --help lists the roles in the order they run', () => {
  assert.deepEqual(ROLE_NAMES, ROLES.map((r) => r.name));
});
