// The engine over real SSH: a real sshd in a network namespace of this test's own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { run } from '../../../cli/engine/runner.ts';
import { SshTransport, UnreachableError } from '../../../cli/engine/transport.ts';
import { PlainReporter } from '../../../cli/engine/report.ts';
import { Redactor } from '../../../cli/engine/redact.ts';
import { fixtureRole, fixtureInventory } from '../../helpers/fixture-role.ts';
import { startSshd, type Sshd } from '../../helpers/netns-sshd.ts';
import { prerequisites, rootUnavailable, commandUnavailable } from '../../helpers/env.ts';

let sshd: Sshd | undefined;
let root = '';
const skipReason = rootUnavailable() ?? commandUnavailable('ssh-keygen', '/usr/sbin/sshd');

before(async () => {
  if (skipReason) return;
  sshd = await startSshd('eng');
  root = mkdtempSync(join(tmpdir(), 'hasetup-ssh-'));
});
after(async () => {
  await sshd?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

function connectOpts(s: Sshd, over: Partial<Parameters<typeof SshTransport.connect>[0]> = {}) {
  return {
    name: 'h1',
    host: s.address,
    port: 22,
    user: 'root',
    privateKey: s.privateKey,
    become: false,
    connectTimeout: 5,
    knownHosts: s.knownHosts,
    ...over,
  };
}

async function apply(s: Sshd, opts: { check?: boolean; content?: string } = {}) {
  let out = '';
  const r = await run({
    inventory: fixtureInventory([{ name: 'h1', address: s.address }]),
    roles: [fixtureRole(root, { content: opts.content })],
    connect: () => SshTransport.connect(connectOpts(s)),
    reporter: new PlainReporter(true, (x) => (out += x)),
    redactor: new Redactor([]),
    check: opts.check,
    stateDir: join(root, 'state'),
  });
  return { r, out };
}

test('first apply over SSH changes, the second changes nothing, one connection reused', async (t) => {
  if (!prerequisites(t, skipReason) || !sshd) return;
  const first = await apply(sshd);
  assert.deepEqual(first.r.hosts.h1, { ok: 0, changed: 4, failed: 0, unreachable: 0, skipped: 0 });
  assert.ok(readFileSync(sshd.knownHosts, 'utf8').startsWith(`${sshd.address} ssh-ed25519 `), 'host key recorded on first use');
  const second = await apply(sshd);
  assert.deepEqual(second.r.hosts.h1, { ok: 3, changed: 0, failed: 0, unreachable: 0, skipped: 0 });
  assert.equal(second.r.roundTrips.h1, 3, 'facts, one probe batch, the record of the run');
});

test('--check over SSH prints the diff of a changed file and changes nothing', async (t) => {
  if (!prerequisites(t, skipReason) || !sshd) return;
  await apply(sshd);
  const before = readFileSync(join(root, 'h1/app.conf'), 'utf8');
  const c = await apply(sshd, { check: true, content: 'name=other\n' });
  assert.equal(c.r.hosts.h1.changed, 2);
  assert.match(c.out, /^ {4}\+name=other$/m);
  assert.equal(readFileSync(join(root, 'h1/app.conf'), 'utf8'), before);
});

test('an unreachable host gives one clear line', async (t) => {
  if (!prerequisites(t, skipReason) || !sshd) return;
  // A port on loopback that nobody listens on: take one, then close it.
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  await assert.rejects(SshTransport.connect(connectOpts(sshd, { host: '127.0.0.1', port })), (e: Error) => {
    assert.ok(e instanceof UnreachableError);
    assert.equal(e.message, `h1 (root@127.0.0.1:${port}): unreachable: connection refused`);
    return true;
  });
  let out = '';
  const r = await run({
    inventory: fixtureInventory([{ name: 'h1', address: '127.0.0.1', port }]),
    roles: [fixtureRole(root)],
    connect: () => SshTransport.connect(connectOpts(sshd as Sshd, { host: '127.0.0.1', port })),
    reporter: new PlainReporter(false, (x) => (out += x)),
    redactor: new Redactor([]),
  });
  assert.equal(r.hosts.h1.unreachable, 1);
  assert.match(out, /^UNREACHABLE h1 \(root@127\.0\.0\.1:\d+\): unreachable: connection refused$/m);
});

test('a changed host key is a hard error', async (t) => {
  if (!prerequisites(t, skipReason) || !sshd) return;
  const t1 = await SshTransport.connect(connectOpts(sshd));
  await t1.close();
  await sshd.rotateHostKey();
  await assert.rejects(SshTransport.connect(connectOpts(sshd)), /host key for 10\.213\.\d+\.2 has changed .*remove its line from/);
});

test('an apply interrupted by SIGINT mid-run is completed by the next run', async (t) => {
  if (!prerequisites(t, skipReason) || !sshd) return;
  const dir = mkdtempSync(join(tmpdir(), 'hasetup-int-'));
  const kh = join(dir, 'known_hosts');
  try {
    const go = (slowMs: number) => {
      const env = {
        ...process.env,
        HASETUP_FIXTURE: JSON.stringify({
          root: dir,
          address: sshd?.address,
          key: sshd?.privateKey,
          knownHosts: kh,
          slowMs,
          stateDir: join(dir, 'state'),
        }),
      };
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/apply-fixture.ts'], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (b) => (out += b));
      child.stderr.on('data', (b) => (out += b));
      return {
        child,
        done: new Promise<{ code: number | null; out: string }>((r) => child.on('exit', (code) => r({ code, out }))),
        out: () => out,
      };
    };
    // The third task sleeps 2 s: interrupt while it runs.
    const first = go(2000);
    const deadline = Date.now() + 20_000;
    while (!first.out().includes('config file: changed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    first.child.kill('SIGINT');
    const r1 = await first.done;
    assert.equal(r1.code, 130, r1.out);
    assert.match(r1.out, /interrupted/);
    assert.ok(!existsSync(join(dir, 'h1/restarts')) || readFileSync(join(dir, 'h1/restarts'), 'utf8') === '', 'handler did not run yet');
    assert.equal(readFileSync(join(dir, 'state/pending/fixture'), 'utf8'), 'restart app\n', 'pending handler recorded on the host');
    const r2 = await go(0).done;
    assert.equal(r2.code, 0, r2.out);
    assert.match(r2.out, /handler restart app: changed/);
    assert.equal(readFileSync(join(dir, 'h1/restarts'), 'utf8'), 'restarted\n');
    const r3 = await go(0).done;
    assert.match(r3.out, /h1 +ok=3 +changed=0 +failed=0/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a connection the host drops (its sshd session killed) fails the next command with a clear error, not the process', async (t) => {
  if (!prerequisites(t, skipReason) || !sshd) return;
  // a known_hosts of its own: an earlier test rotated the host key
  const tr = await SshTransport.connect(connectOpts(sshd, { knownHosts: join(root, 'known_hosts-drop') }));
  try {
    assert.equal((await tr.exec('echo alive')).stdout, 'alive\n');
    // the nearest sshd above this shell is the one serving this connection: killing it drops it
    await tr
      .exec('p=$$; while [ "$(cat /proc/$p/comm)" != sshd ]; do p=$(ps -o ppid= -p $p | tr -d " "); done; kill -9 $p')
      .catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    await assert.rejects(
      tr.exec('echo again'),
      (e: Error) => e instanceof UnreachableError && /h1 \(root@10\.213\.253\.2:22\): connection lost/.test(e.message),
    );
  } finally {
    await tr.close();
  }
});

test('a command killed by a signal comes back without an exit status (lost), and the connection still works', async (t) => {
  if (!prerequisites(t, skipReason) || !sshd) return;
  const tr = await SshTransport.connect(connectOpts(sshd, { knownHosts: join(root, 'known_hosts-lost') }));
  try {
    const r = await tr.exec('echo before; kill -9 $$');
    assert.equal(r.stdout, 'before\n');
    assert.deepEqual([r.code, r.lost], [255, { signal: 'SIGKILL' }]);
    const ok = await tr.exec('echo after');
    assert.deepEqual([ok.code, ok.stdout, ok.lost], [0, 'after\n', undefined]);
  } finally {
    await tr.close();
  }
});
