// The test helper other end-to-end tests use: ensureLab() brings a lab up when it is not, shares a
// running one, adds the replica on demand, and release() takes the lab down only when the helper
// brought it up and its last user is done.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parse } from 'yaml';
import { prerequisites } from '../../helpers/env.ts';
import { ensureLab, labUnavailable } from '../../helpers/lab.ts';
import { labConfig } from '../../../cli/lab/config.ts';
import { labDown } from '../../../cli/lab/lab.ts';
import { netnsExists } from '../../../cli/lab/net.ts';

test('ensureLab: up when down, shared when up, replica added, down after the last release', { timeout: 20 * 60_000 }, async (t) => {
  if (!prerequisites(t, labUnavailable())) return;
  const name = `hlp${process.pid}`;
  const work = mkdtempSync(join(tmpdir(), 'hsl-helper-'));
  const inventory = join(work, 'inventory.yaml');
  const cfg = labConfig({ name });
  t.after(async () => {
    await labDown(cfg).catch((err) => console.log(`# clean-up: ${(err as Error).message}`));
    rmSync(cfg.stateDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  const first = await ensureLab({ name, inventory });
  assert.equal(first.broughtUp, true);
  assert.equal(first.inventory, inventory);
  assert.deepEqual(
    first.hosts.map((h) => h.name),
    ['lb01', 'lb02', 'web01', 'web02', 'db01'],
  );
  const who = await first.ssh('web02', 'hostname');
  assert.equal(who.code, 0, who.stderr);
  assert.equal(who.stdout.trim(), 'web02');
  const inCtl = await first.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
  assert.equal(inCtl.code, 0, inCtl.stderr);
  assert.match(inCtl.stdout, /inet 10\.213\.0\.10\/24/);

  // a second user (here in the same process) shares the running lab and adds the replica
  const second = await ensureLab({ name, inventory, replica: true });
  assert.equal(second.broughtUp, false);
  assert.deepEqual(
    second.hosts.map((h) => h.name),
    ['lb01', 'lb02', 'web01', 'web02', 'db01', 'db02'],
  );
  const replica = await second.ssh('db02', 'hostname; ping -c1 -W2 10.213.0.31 >/dev/null && echo reaches-db01');
  assert.equal(replica.code, 0, replica.stderr);
  assert.deepEqual(replica.stdout.trim().split('\n'), ['db02', 'reaches-db01']);
  const inv = parse(readFileSync(inventory, 'utf8'));
  assert.deepEqual(inv.hosts.db, [
    { name: 'db01', address: '10.213.0.31', server_id: 1 },
    { name: 'db02', address: '10.213.0.32', server_id: 2 },
  ]);

  // the helper brought the lab up: it goes down when its last user releases it
  await second.release();
  assert.equal(netnsExists(`${cfg.prefix}ctl`), true, 'still up: the first user holds it');
  const still = await first.ssh('db01', 'true');
  assert.equal(still.code, 0);
  await first.release();
  assert.equal(netnsExists(`${cfg.prefix}ctl`), false, 'the lab is down');
  assert.equal(existsSync(join(cfg.stateDir, 'state.json')), false);
});
