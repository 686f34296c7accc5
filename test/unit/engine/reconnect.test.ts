// The reconnect check on its own: a new connection confirms the change, or the host's own rollback
// is waited for on the old one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { confirmByReconnect } from '../../../cli/engine/reconnect.ts';
import type { ExecResult, Transport } from '../../../cli/engine/transport.ts';

function transport(answer: (script: string) => Partial<ExecResult>): Transport & { asked: string[]; closed: boolean } {
  const t = {
    target: 't',
    roundTrips: 0,
    asked: [] as string[],
    closed: false,
    async exec(script: string) {
      t.asked.push(script);
      return { code: 0, stdout: '', stderr: '', ...answer(script) };
    },
    async close() {
      t.closed = true;
    },
  };
  return t;
}

const c = { script: 'confirm', rollbackAfterSec: 0, rolledBack: 'rolled-back?' };

test('a new connection that confirms: null, and the new connection is closed', async () => {
  const fresh = transport(() => ({}));
  const old = transport(() => ({}));
  assert.equal(await confirmByReconnect(async () => fresh, old, c), null);
  assert.deepEqual(fresh.asked, ['confirm']);
  assert.ok(fresh.closed);
  assert.deepEqual(old.asked, []);
});

test('no new connection: the rollback is seen on the old one, and the task fails saying so', async () => {
  let polls = 0;
  const old = transport(() => ({ code: ++polls < 3 ? 1 : 0 }));
  const why = await confirmByReconnect(
    async () => {
      throw new Error('connection timed out');
    },
    old,
    c,
    { pollMs: 10 },
  );
  assert.equal(why, 'the change cut new SSH connections from the controller (connection timed out): rolled back by the host itself');
  assert.equal(polls, 3);
});

test('a confirmation that fails, and a rollback never seen: the reason and the time waited', async () => {
  const fresh = transport(() => ({ code: 1, stderr: 'no such file\n' }));
  const old = transport(() => ({ code: 1 }));
  const why = await confirmByReconnect(async () => fresh, old, c, { graceSec: 0.2, pollMs: 20 });
  assert.equal(
    why,
    'the change cut new SSH connections from the controller (confirmation failed: no such file) and the rollback was not seen within 0.2s',
  );
  assert.ok(old.asked.length >= 2 && old.asked.every((s) => s === 'rolled-back?'));
  assert.ok(fresh.closed);
});
