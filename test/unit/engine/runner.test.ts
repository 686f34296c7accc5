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
import { file as fileOp } from '../../../cli/engine/ops.ts';

function setup() {
  const root = mkdtempSync(join(tmpdir(), 'hasetup-runner-'));
  // One host by default: with the local transport every host shares this machine's state folder.
  const inv = fixtureInventory([{ name: 'h1', address: '127.0.0.1' }]);
  return { root, inv, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

async function apply(root: string, inv: ReturnType<typeof fixtureInventory>, opts: { check?: boolean; content?: string; secret?: string; signal?: AbortSignal } = {}) {
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
    assert.equal(second.result.roundTrips.h1, 2, 'facts + one probe batch');
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
  const inv = fixtureInventory([{ name: 'h1', address: '127.0.0.1' }, { name: 'h2', address: '127.0.0.1' }]);
  try {
    const r = await run({
      inventory: inv, roles: [fixtureRole(root)], connect: async () => new LocalTransport(),
      reporter: new PlainReporter(false, () => {}), redactor: new Redactor([]), stateDir: join(root, 'state'), limit: ['h2'], tags: ['fixture'],
    });
    assert.deepEqual(Object.keys(r.hosts), ['h2']);
    await assert.rejects(
      run({ inventory: inv, roles: [fixtureRole(root)], connect: async () => new LocalTransport(), reporter: new PlainReporter(false, () => {}), redactor: new Redactor([]), limit: ['nope'] }),
      /--limit: no host or group named nope/,
    );
  } finally {
    cleanup();
  }
});

test('a serial handler runs on one host of its group at a time, after its peers answer', async () => {
  const { root, cleanup } = setup();
  try {
    const inv = fixtureInventory([{ name: 'lb01', address: '127.0.0.1' }, { name: 'lb02', address: '127.0.0.1' }]);
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
          serial: 'lb' as const,
          peerReady: `test -e ${root}/peer-ok`,
          script: `echo "start ${ctx.host.name}" >> ${log}; sleep 0.4; echo "end ${ctx.host.name}" >> ${log}`,
        },
      ],
    };
    writeFileSync(join(root, 'peer-ok'), '');
    const r = await run({
      inventory: inv, roles: [role as unknown as Parameters<typeof run>[0]['roles'][number]], connect: async () => new LocalTransport(),
      reporter: new PlainReporter(false, () => {}), redactor: new Redactor([]), stateDir: join(root, 'state'),
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
