// End-to-end in the lab: a replica added to a running cluster. The cluster is applied with db01
// alone and the application writes a row; then the lab gains db02 and the next apply seeds it from the
// primary's binary log (by GTID, from the start: the primary logs since its first start), with the
// row already there, and both replication threads running.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { labConfig, repoRoot } from '../../../cli/lab/config.ts';
import { ensureLab, labUnavailable, type Lab } from '../../helpers/lab.ts';
import { prerequisites } from '../../helpers/env.ts';

const TAGS = 'common,apache,mysql';
const HASETUP = join(repoRoot, 'bin', 'hasetup.js');
const skip = labUnavailable();
const labs: Lab[] = [];
after(async () => {
  for (const l of labs) await l.release();
});

interface Recap {
  ok: number;
  changed: number;
  failed: number;
  unreachable: number;
  skipped: number;
}
interface Result {
  host: string;
  task: string;
  status: string;
  message?: string;
}

async function apply(lab: Lab) {
  const t0 = Date.now();
  const r = await lab.exec([process.execPath, HASETUP, 'apply', lab.inventory, '--tags', TAGS, '--json']);
  try {
    const out = JSON.parse(r.stdout) as { hosts: Record<string, Recap>; results: Result[] };
    return { ...r, ms: Date.now() - t0, hosts: out.hosts, results: out.results };
  } catch {
    throw new Error(`apply printed no JSON (exit ${r.code}): ${r.stdout.slice(-2000)} ${r.stderr.slice(-2000)}`);
  }
}

async function ssh(lab: Lab, host: string, cmd: string): Promise<string> {
  const r = await lab.ssh(host, cmd);
  assert.equal(r.code, 0, `${host}: ${cmd}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

test('a replica added later is seeded from the primary and replicates', async (t) => {
  if (!prerequisites(t, skip)) return;
  const inventory = join(labConfig().stateDir, 'inventory.yaml');
  const lab = await ensureLab({ inventory });
  labs.push(lab);
  if (lab.hosts.some((h) => h.name === 'db02')) {
    t.skip('the lab already runs db02 (this test adds it to a running cluster): take the lab down first');
    return;
  }
  const first = await apply(lab);
  assert.equal(first.code, 0, JSON.stringify(first.results.filter((x) => x.status === 'failed')));
  const marker = `before-db02-${process.pid}`;
  const table = `e2e_early_${process.pid}`;
  await ssh(
    lab,
    'db01',
    `mariadb -e "CREATE TABLE app.${table} (id INT PRIMARY KEY, v VARCHAR(64)); INSERT INTO app.${table} VALUES (1, '${marker}')"`,
  );

  const withReplica = await ensureLab({ replica: true, inventory });
  labs.push(withReplica);
  assert.ok(withReplica.hosts.some((h) => h.name === 'db02'));
  const second = await apply(withReplica);
  assert.equal(second.code, 0, JSON.stringify(second.results.filter((x) => x.status === 'failed')));
  assert.ok(second.hosts.db02.changed > 0);
  // on db01 only the account for the new replica, /etc/hosts naming it and the explanation of
  // max_connections (one more for replication, still MariaDB's 151) changed: no restart
  assert.deepEqual(
    second.results
      .filter((x) => x.host === 'db01' && x.status === 'changed')
      .map((x) => x.task)
      .sort(),
    ['/etc/hosts', 'max_connections (61-hasetup-connections.cnf)', 'user repl from the replicas'],
  );
  console.log(`# apply adding db02 to a running cluster: ${second.ms} ms`);

  assert.equal(
    await ssh(withReplica, 'db02', `mariadb -N -B -e "SELECT v FROM app.${table} WHERE id = 1"`),
    `${marker}\n`,
    'seeded with what db01 had before',
  );
  const st = await ssh(withReplica, 'db02', "mariadb -E -e 'SHOW SLAVE STATUS'");
  assert.match(st, /^\s*Slave_IO_Running: Yes$/m);
  assert.match(st, /^\s*Slave_SQL_Running: Yes$/m);
  await ssh(withReplica, 'db01', `mariadb -e "DROP TABLE app.${table}"`);
  for (let i = 0; i < 30; i++) {
    if (
      (await ssh(
        withReplica,
        'db02',
        `mariadb -N -B -e "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = '${table}'"`,
      )) === '0\n'
    )
      break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  assert.equal(
    await ssh(withReplica, 'db02', `mariadb -N -B -e "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = '${table}'"`),
    '0\n',
    'the drop replicated',
  );
  const third = await apply(withReplica);
  for (const [h, rc] of Object.entries(third.hosts)) assert.deepEqual([h, rc.changed, rc.failed], [h, 0, 0]);
});
