// The runner against this machine's shell (local transport) with a role confined to a temp folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from '../../../cli/engine/runner.ts';
import { LocalTransport } from '../../../cli/engine/transport.ts';
import { PlainReporter, JsonReporter } from '../../../cli/engine/report.ts';
import { Redactor } from '../../../cli/engine/redact.ts';
import { fixtureRole, fixtureInventory } from '../../helpers/fixture-role.ts';
import { file as fileOp, command as commandOp } from '../../../cli/engine/ops.ts';

function setup() {
  const root = mkdtempSync(join(tmpdir(), 'hasetup-runner-'));
  // One host by default: with the local transport every host shares this machine's state folder.
  const inv = fixtureInventory([{ name: 'h1', address: '127.0.0.1' }]);
  return { root, inv, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

async function apply(
  root: string,
  inv: ReturnType<typeof fixtureInventory>,
  opts: { check?: boolean; content?: string; secret?: string; signal?: AbortSignal } = {},
) {
  let out = '';
  const transports: LocalTransport[] = [];
  const result: RunResult = await run({
    inventory: inv,
    roles: [fixtureRole(root, { content: opts.content, secret: opts.secret })],
    connect: async () => {
      const t = new LocalTransport();
      transports.push(t);
      return t;
    },
    reporter: new PlainReporter(true, (s) => (out += s)),
    redactor: new Redactor([opts.secret ?? 'unused-secret']),
    check: opts.check,
    signal: opts.signal,
    stateDir: join(root, 'state'),
  });
  return { result, out, transports };
}

test('first run changes, second run changes nothing and costs one round trip per role after facts', async () => {
  const { root, inv, cleanup } = setup();
  try {
    const first = await apply(root, inv);
    assert.deepEqual(first.result.hosts.h1, { ok: 0, changed: 4, failed: 0, unreachable: 0, skipped: 0 });
    assert.equal(readFileSync(join(root, 'h1/app.conf'), 'utf8'), 'name=h1\npassword=none\n');
    assert.equal(readFileSync(join(root, 'h1/restarts'), 'utf8'), 'restarted\n', 'handler ran once');
    const second = await apply(root, inv);
    assert.deepEqual(second.result.hosts.h1, { ok: 3, changed: 0, failed: 0, unreachable: 0, skipped: 0 });
    assert.equal(second.result.roundTrips.h1, 3, 'facts + one probe batch + the record of the run');
    const record = JSON.parse(readFileSync(join(root, 'state/last-apply.json'), 'utf8'));
    assert.deepEqual(
      { ...record, at: typeof record.at },
      { at: 'string', ok: 3, changed: 0, failed: 0, roles: ['fixture'], interrupted: false },
    );
    assert.equal(readFileSync(join(root, 'h1/restarts'), 'utf8'), 'restarted\n', 'handler not run again');
  } finally {
    cleanup();
  }
});

test('--check shows the diff and changes nothing', async () => {
  const { root, inv, cleanup } = setup();
  try {
    await apply(root, inv);
    const c = await apply(root, inv, { check: true, content: 'name=changed\n' });
    assert.equal(c.result.hosts.h1.changed, 2, 'the file would change and its handler would run');
    assert.match(c.out, /-name=h1/);
    assert.match(c.out, /\+name=changed/);
    assert.equal(readFileSync(join(root, 'h1/app.conf'), 'utf8'), 'name=h1\npassword=none\n');
    assert.equal(readFileSync(join(root, 'h1/restarts'), 'utf8'), 'restarted\n');
  } finally {
    cleanup();
  }
});

test('secrets never appear in output, even in diffs', async () => {
  const { root, inv, cleanup } = setup();
  try {
    const secret = 'S3cr3t-Value-42';
    const r = await apply(root, inv, { secret });
    assert.equal(r.result.hosts.h1.changed, 4);
    assert.ok(readFileSync(join(root, 'h1/app.conf'), 'utf8').includes(secret), 'the secret is in the file');
    assert.ok(!r.out.includes(secret), 'but not in the output');
    assert.match(r.out, /\+password=\*{8}/);
  } finally {
    cleanup();
  }
});

test('a handler left pending by an interrupted run fires on the next run', async () => {
  const { root, inv, cleanup } = setup();
  try {
    const ac = new AbortController();
    ac.abort();
    // Nothing runs when interrupted before the first task; simulate a run cut after the file
    // changed: the pending record is what the change step writes on the host.
    const first = await apply(root, inv, { signal: ac.signal });
    assert.equal(first.result.interrupted, true);
    assert.ok(!existsSync(join(root, 'h1/app.conf')));
    await apply(root, inv); // full run: restarts once
    writeFileSync(join(root, 'state/pending/fixture'), 'restart app\n');
    const next = await apply(root, inv);
    assert.equal(next.result.hosts.h1.changed, 1, 'only the pending handler');
    assert.equal(readFileSync(join(root, 'h1/restarts'), 'utf8'), 'restarted\nrestarted\n');
    assert.equal(readFileSync(join(root, 'state/pending/fixture'), 'utf8'), '', 'cleared once it ran');
  } finally {
    cleanup();
  }
});

test('a failing task fails its host, skips the rest, still runs notified handlers, exits the recap with failed=1', async () => {
  const { root, inv, cleanup } = setup();
  try {
    writeFileSync(join(root, 'h1'), 'a file where the folder should be');
    const r = await apply(root, inv);
    assert.equal(r.result.hosts.h1.failed, 1);
    assert.equal(r.result.hosts.h1.skipped, 2);
    assert.match(r.out, /h1 \| fixture \| folder: failed \(.*is not a directory\)/);
  } finally {
    cleanup();
  }
});

test('json reporter ends with the recap per host', async () => {
  const { root, inv, cleanup } = setup();
  try {
    let out = '';
    await run({
      inventory: inv,
      roles: [fixtureRole(root)],
      connect: async () => new LocalTransport(),
      reporter: new JsonReporter((s) => (out += s)),
      redactor: new Redactor([]),
      stateDir: join(root, 'state'),
    });
    const j = JSON.parse(out);
    assert.deepEqual(j.hosts.h1, { ok: 0, changed: 4, failed: 0, unreachable: 0, skipped: 0 });
    assert.equal(j.results.length, 4);
  } finally {
    cleanup();
  }
});

test('--limit and --tags select hosts and roles, and name what does not exist', async () => {
  const { root, cleanup } = setup();
  const inv = fixtureInventory([
    { name: 'h1', address: '127.0.0.1' },
    { name: 'h2', address: '127.0.0.1' },
  ]);
  try {
    const r = await run({
      inventory: inv,
      roles: [fixtureRole(root)],
      connect: async () => new LocalTransport(),
      reporter: new PlainReporter(false, () => {}),
      redactor: new Redactor([]),
      stateDir: join(root, 'state'),
      limit: ['h2'],
      tags: ['fixture'],
    });
    assert.deepEqual(Object.keys(r.hosts), ['h2']);
    await assert.rejects(
      run({
        inventory: inv,
        roles: [fixtureRole(root)],
        connect: async () => new LocalTransport(),
        reporter: new PlainReporter(false, () => {}),
        redactor: new Redactor([]),
        limit: ['nope'],
      }),
      /--limit: no host or group named nope/,
    );
  } finally {
    cleanup();
  }
});

test('a serial handler runs on one host of its group at a time, after its peers answer', async () => {
  const { root, cleanup } = setup();
  try {
    const inv = fixtureInventory([
      { name: 'lb01', address: '127.0.0.1' },
      { name: 'lb02', address: '127.0.0.1' },
    ]);
    for (const h of inv.hosts) h.group = 'lb';
    const log = join(root, 'reloads.log');
    const role = {
      name: 'serial',
      description: 'two LBs reloading',
      appliesTo: () => true,
      tasks: (ctx: { host: { name: string } }) => [
        { name: 'config', op: fileOp({ path: join(root, `${ctx.host.name}.cfg`), content: 'x\n' }), notify: ['reload'] },
      ],
      handlers: (ctx: { host: { name: string } }) => [
        {
          name: 'reload',
          serial: { group: 'lb' as const, peerReady: `test -e ${root}/peer-ok` },
          script: `echo "start ${ctx.host.name}" >> ${log}; sleep 0.4; echo "end ${ctx.host.name}" >> ${log}`,
        },
      ],
    };
    writeFileSync(join(root, 'peer-ok'), '');
    const r = await run({
      inventory: inv,
      roles: [role as unknown as Parameters<typeof run>[0]['roles'][number]],
      connect: async () => new LocalTransport(),
      reporter: new PlainReporter(false, () => {}),
      redactor: new Redactor([]),
      stateDir: join(root, 'state'),
    });
    assert.equal(r.hosts.lb01.changed + r.hosts.lb02.changed, 4);
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    assert.equal(lines.length, 4);
    // Never two reloads at once: each start is followed by the same host's end.
    assert.match(lines[0], /^start (lb0\d)$/);
    assert.equal(lines[1], lines[0].replace('start', 'end'));
    assert.match(lines[2], /^start (lb0\d)$/);
    assert.equal(lines[3], lines[2].replace('start', 'end'));
    assert.notEqual(lines[0], lines[2]);
  } finally {
    cleanup();
  }
});

/** Local transports that tell their scripts which host they stand for ($HASETUP_TEST_HOST). */
const asHost = (h: { name: string }) => new LocalTransport({ ...process.env, HASETUP_TEST_HOST: h.name });
type AnyRole = Parameters<typeof run>[0]['roles'][number];

test('serial turns go lowest rank first: the master (rank 1) waits for the backup even when it arrives first', async () => {
  const { root, cleanup } = setup();
  try {
    const inv = fixtureInventory([
      { name: 'lb01', address: '127.0.0.1' },
      { name: 'lb02', address: '127.0.0.1' },
    ]);
    for (const h of inv.hosts) h.group = 'lb';
    writeFileSync(join(root, 'rank-lb01'), '1\n');
    writeFileSync(join(root, 'rank-lb02'), '0\n');
    const log = join(root, 'turns.log');
    const role = {
      name: 'ordered',
      description: 'the backup reloads first',
      appliesTo: () => true,
      tasks: (ctx: { host: { name: string } }) => [
        // lb02 is slower to get there
        {
          name: 'slow on lb02',
          op: fileOp({
            path: join(root, `${ctx.host.name}.slow`),
            content: 'x\n',
            validate: ctx.host.name === 'lb02' ? 'sleep 0.6' : 'true',
          }),
        },
        { name: 'config', op: fileOp({ path: join(root, `${ctx.host.name}.cfg`), content: 'x\n' }), notify: ['reload'] },
      ],
      handlers: () => [
        {
          name: 'reload',
          serial: { group: 'lb' as const, rank: `cat ${root}/rank-$HASETUP_TEST_HOST` },
          script: `echo "$HASETUP_TEST_HOST" >> ${log}`,
        },
      ],
    };
    const r = await run({
      inventory: inv,
      roles: [role as unknown as AnyRole],
      connect: async (h) => asHost(h),
      reporter: new PlainReporter(false, () => {}),
      redactor: new Redactor([]),
      stateDir: join(root, 'state'),
    });
    assert.equal(r.hosts.lb01.failed + r.hosts.lb02.failed, 0);
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), ['lb02', 'lb01']);
  } finally {
    cleanup();
  }
});

test('a serial task changes on one host at a time and a peer that is done with the role does not hold the others', async () => {
  const { root, cleanup } = setup();
  try {
    const inv = fixtureInventory([
      { name: 'lb01', address: '127.0.0.1' },
      { name: 'lb02', address: '127.0.0.1' },
    ]);
    for (const h of inv.hosts) h.group = 'lb';
    writeFileSync(join(root, 'rank-lb01'), '1\n');
    writeFileSync(join(root, 'rank-lb02'), '0\n');
    // lb02 is already right: it takes no turn, and lb01 (rank 1) must not wait for it
    writeFileSync(join(root, 'lb02.marker'), '');
    const log = join(root, 'switch.log');
    const role = {
      name: 'switch',
      description: 'one at a time',
      appliesTo: () => true,
      tasks: (ctx: { host: { name: string } }) => [
        {
          name: 'switch',
          serial: { group: 'lb' as const, rank: `cat ${root}/rank-$HASETUP_TEST_HOST` },
          op: commandOp({
            script: `echo start >> ${log}; sleep 0.3; echo end >> ${log}; touch ${root}/${ctx.host.name}.marker`,
            creates: `${root}/${ctx.host.name}.marker`,
          }),
        },
      ],
    };
    const t0 = Date.now();
    const r = await run({
      inventory: inv,
      roles: [role as unknown as AnyRole],
      connect: async (h) => asHost(h),
      reporter: new PlainReporter(false, () => {}),
      redactor: new Redactor([]),
      stateDir: join(root, 'state'),
    });
    assert.equal(r.hosts.lb01.changed, 1);
    assert.equal(r.hosts.lb02.ok, 1);
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), ['start', 'end']);
    assert.ok(Date.now() - t0 < 10_000, 'no wait for a peer that had nothing to do');
  } finally {
    cleanup();
  }
});

test('a role declared `after` another waits until the hosts of that group finished it', async () => {
  const { root, cleanup } = setup();
  try {
    const inv = fixtureInventory([
      { name: 'db1', address: '127.0.0.1' },
      { name: 'w1', address: '127.0.0.1' },
    ]);
    inv.hosts[0].group = 'db';
    const log = join(root, 'order.log');
    const slow = {
      name: 'slow',
      description: 'the db side, slowly',
      appliesTo: (h: { group: string }) => h.group === 'db',
      tasks: () => [
        { name: 'slow', op: commandOp({ script: `sleep 0.5; echo slow >> ${log}; touch ${root}/slow`, creates: `${root}/slow` }) },
      ],
    };
    const later = {
      name: 'later',
      description: 'the web side, after the db side',
      appliesTo: (h: { group: string }) => h.group === 'web',
      after: [{ group: 'db' as const, role: 'slow' }],
      tasks: () => [{ name: 'later', op: commandOp({ script: `echo later >> ${log}; touch ${root}/later`, creates: `${root}/later` }) }],
    };
    // listed after: the registry's order is per host, `after` orders across hosts
    const r = await run({
      inventory: inv,
      roles: [later, slow] as unknown as AnyRole[],
      connect: async (h) => asHost(h),
      reporter: new PlainReporter(false, () => {}),
      redactor: new Redactor([]),
      stateDir: join(root, 'state'),
    });
    assert.equal(r.hosts.db1.changed + r.hosts.w1.changed, 2);
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), ['slow', 'later']);
  } finally {
    cleanup();
  }
});

test('factsFrom: a role reads the facts of a host outside the run (--limit), contacted for its facts only', async () => {
  const { root, cleanup } = setup();
  try {
    const inv = fixtureInventory([
      { name: 'lb1', address: '127.0.0.1' },
      { name: 'w1', address: '127.0.0.1' },
    ]);
    inv.hosts[0].group = 'lb';
    const role = {
      name: 'peer',
      description: 'writes what it knows of the web node',
      appliesTo: (h: { group: string }) => h.group === 'lb',
      factsFrom: (_h: unknown, i: typeof inv) => i.hosts.filter((h) => h.group === 'web'),
      tasks: (ctx: { factsOf(h: unknown): { cpus: number; user: string }; inv: typeof inv }) => {
        const f = ctx.factsOf(ctx.inv.hosts[1]);
        return [{ name: 'peer facts', op: fileOp({ path: join(root, 'peer.txt'), content: `cpus=${f.cpus} user=${f.user}\n` }) }];
      },
    };
    const connects: string[] = [];
    const r = await run({
      inventory: inv,
      roles: [role as unknown as AnyRole],
      limit: ['lb1'],
      connect: async (h) => (connects.push(h.name), asHost(h)),
      reporter: new PlainReporter(false, () => {}),
      redactor: new Redactor([]),
      stateDir: join(root, 'state'),
    });
    assert.deepEqual(Object.keys(r.hosts), ['lb1']);
    assert.equal(r.hosts.lb1.changed, 1);
    assert.match(readFileSync(join(root, 'peer.txt'), 'utf8'), /^cpus=\d+ user=\S+\n$/);
    assert.deepEqual(connects.sort(), ['lb1', 'w1']);
  } finally {
    cleanup();
  }
});

test('a serial change that fails on one host is not made on the others of its group', async () => {
  const { root, cleanup } = setup();
  try {
    const inv = fixtureInventory([
      { name: 'lb01', address: '127.0.0.1' },
      { name: 'lb02', address: '127.0.0.1' },
    ]);
    for (const h of inv.hosts) h.group = 'lb';
    const log = join(root, 'tries.log');
    const role = {
      name: 'risky',
      description: 'fails wherever it runs',
      appliesTo: () => true,
      tasks: (ctx: { host: { name: string } }) => [
        {
          name: 'switch',
          serial: { group: 'lb' as const },
          op: commandOp({ script: `echo ${ctx.host.name} >> ${log}; exit 1`, creates: `${root}/never` }),
        },
      ],
    };
    let out = '';
    const r = await run({
      inventory: inv,
      roles: [role as unknown as AnyRole],
      connect: async (h) => asHost(h),
      reporter: new PlainReporter(false, (s) => (out += s)),
      redactor: new Redactor([]),
      stateDir: join(root, 'state'),
    });
    assert.equal(r.hosts.lb01.failed + r.hosts.lb02.failed, 2);
    const tried = readFileSync(log, 'utf8').trim().split('\n');
    assert.equal(tried.length, 1, 'only the first host tried');
    assert.match(out, new RegExp(`switch: failed \\(.*not run: it failed on ${tried[0]}, and the lb hosts change one at a time`));
  } finally {
    cleanup();
  }
});

test('ranks that change while hosts wait (the VIP moved) never make two hosts wait for each other', { timeout: 20_000 }, async () => {
  const { root, cleanup } = setup();
  try {
    const inv = fixtureInventory([
      { name: 'lb01', address: '127.0.0.1' },
      { name: 'lb02', address: '127.0.0.1' },
    ]);
    for (const h of inv.hosts) h.group = 'lb';
    // lb02 holds the VIP when it gets to its turn (rank 1) and waits for lb01 (rank 0)...
    writeFileSync(join(root, 'rank-lb01'), '0\n');
    writeFileSync(join(root, 'rank-lb02'), '1\n');
    const log = join(root, 'turns.log');
    const role = {
      name: 'flip',
      description: 'the VIP moves from lb02 to lb01 before lb01 gets to its turn',
      appliesTo: () => true,
      tasks: (ctx: { host: { name: string } }) => [
        {
          name: 'change',
          op: commandOp({
            // ...and lb01, before its turn, takes the VIP: now lb01 says 1, lb02 says 0
            script: ctx.host.name === 'lb01' ? `sleep 0.5; echo 1 > ${root}/rank-lb01; echo 0 > ${root}/rank-lb02` : 'true',
            creates: `${root}/never`,
          }),
          notify: ['reload'],
        },
      ],
      handlers: () => [
        {
          name: 'reload',
          serial: { group: 'lb' as const, rank: `cat ${root}/rank-$HASETUP_TEST_HOST` },
          script: `echo "$HASETUP_TEST_HOST" >> ${log}`,
        },
      ],
    };
    const r = await run({
      inventory: inv,
      roles: [role as unknown as AnyRole],
      connect: async (h) => asHost(h),
      reporter: new PlainReporter(false, () => {}),
      redactor: new Redactor([]),
      stateDir: join(root, 'state'),
    });
    assert.equal(r.hosts.lb01.failed + r.hosts.lb02.failed, 0);
    // lb02 stated rank 1 on arrival, lb01 rank 1 on its own: neither is below the other, both go
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n').sort(), ['lb01', 'lb02']);
  } finally {
    cleanup();
  }
});

test('a connection that breaks in the middle of a run fails its host only; the other hosts are applied', async () => {
  const { root, cleanup } = setup();
  try {
    const inv = fixtureInventory([
      { name: 'h1', address: '127.0.0.1' },
      { name: 'h2', address: '127.0.0.1' },
    ]);
    const broken = (h: { name: string }) => {
      const t = asHost(h);
      let n = 0;
      const exec = t.exec.bind(t);
      t.exec = (...a: Parameters<typeof exec>) =>
        h.name === 'h1' && ++n > 1 ? Promise.reject(new Error('h1: connection lost: the connection closed')) : exec(...a);
      return t;
    };
    let out = '';
    const r = await run({
      inventory: inv,
      roles: [fixtureRole(root)],
      connect: async (h) => broken(h),
      reporter: new PlainReporter(false, (s) => (out += s)),
      redactor: new Redactor([]),
      stateDir: join(root, 'state'),
    });
    assert.equal(r.hosts.h1.failed, 1);
    assert.match(out, /h1 \| fixture \| \(connection\): failed \(h1: connection lost: the connection closed\)/);
    assert.equal(r.hosts.h2.failed, 0);
    assert.ok(r.hosts.h2.changed > 0);
  } finally {
    cleanup();
  }
});

test('a preflight that finds a problem, once the facts are in: every host fails before any change, and says why', async () => {
  const { root, inv, cleanup } = setup();
  try {
    let seen: number | undefined;
    const result = await run({
      inventory: inv,
      roles: [fixtureRole(root)],
      connect: async () => new LocalTransport(),
      reporter: new JsonReporter(() => {}),
      redactor: new Redactor(['unused-secret']),
      stateDir: join(root, 'state'),
      preflight: {
        hosts: inv.hosts,
        check: (factsOf) => {
          seen = factsOf(inv.hosts[0])?.memoryMb;
          return ['max_connections 8 is below the 15 the cluster may open'];
        },
      },
    });
    assert.ok(seen && seen > 0, "the check got the host's facts");
    assert.deepEqual(result.hosts.h1, { ok: 0, changed: 0, failed: 1, unreachable: 0, skipped: 0 });
    assert.equal(result.results[0].role, 'preflight');
    assert.match(result.results[0].message ?? '', /max_connections 8 is below the 15/);
    assert.equal(existsSync(join(root, 'h1')), false, 'nothing changed');
    assert.ok(result.facts.h1, 'the facts are in the result');
  } finally {
    cleanup();
  }
});
