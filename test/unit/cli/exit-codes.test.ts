// Every command's exit codes, and its --json output where it has one, without root and without a lab:
// 0 done, 1 a failed run (an invalid inventory, an unreachable host), 2 a usage error, and an
// unexpected error shown in one line unless --debug (or HASETUP_DEBUG=1) asks for its stack.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prerequisites, rootUnavailable } from '../../helpers/env.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

function hasetup(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, CI: '', NO_COLOR: '1', ...env },
    input: '',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** An inventory whose hosts are loopback addresses where no sshd answers. */
async function unreachableInventory(dir: string): Promise<string> {
  const port = await closedPort();
  const file = join(dir, 'inventory.yaml');
  writeFileSync(
    file,
    `cluster: nowhere
vip: { address: 127.0.0.100/8, interface: lo }
ssh: { user: root, port: ${port}, connect_timeout: 2, known_hosts: ./known_hosts }
hosts:
  lb: [{ name: lb01, address: 127.0.0.11 }, { name: lb02, address: 127.0.0.12 }]
  web: [{ name: web01, address: 127.0.0.21 }]
  db: [{ name: db01, address: 127.0.0.31 }]
roles:
  firewall: { admin_cidrs: [127.0.0.1/32] }
`,
  );
  return file;
}

test('--help and --version: 0; no command, an unknown command or option, a missing argument: 2', () => {
  const help = hasetup(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: hasetup \[options\] \[command\]/);
  for (const cmd of ['init', 'apply', 'status', 'failover-test', 'lab']) assert.match(help.stdout, new RegExp(`^  ${cmd}\\b`, 'm'));
  assert.equal(
    hasetup(['--version']).stdout.trim(),
    JSON.parse(spawnSync('cat', [join(ROOT, 'package.json')], { encoding: 'utf8' }).stdout).version,
  );
  assert.equal(hasetup(['apply', '--help']).code, 0);
  assert.equal(hasetup([]).code, 2);
  const unknown = hasetup(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  assert.equal(hasetup(['apply']).code, 2, 'missing <inventory>');
  assert.equal(hasetup(['status', 'x.yaml', '--no-such-option']).code, 2);
  assert.equal(hasetup(['lab', 'up', '--runtime', 'nginx']).code, 2);
  assert.equal(hasetup(['lab', 'up', '--web-nodes', '12']).code, 2);
  assert.equal(hasetup(['lab', 'up', '--provider', 'xen']).code, 2);
});

test('help text wraps by itself: no line wider than the terminal asks for', () => {
  for (const args of [['--help'], ['apply', '--help'], ['status', '--help'], ['init', '--help']]) {
    const r = hasetup(args, { COLUMNS: '80' });
    assert.equal(r.code, 0);
    const wide = r.stdout.split('\n').filter((l) => l.length > 80 && !/^ {2,}hasetup |^ {2}#/.test(l));
    assert.deepEqual(wide, [], `${args.join(' ')}: lines over 80 columns`);
  }
});

test('apply and status: an invalid inventory is 1 (nothing contacted); an unknown --limit or --tags is 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hasetup-exit-'));
  try {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'cluster: Not_A_Name\n');
    for (const cmd of ['apply', 'status']) {
      const r = hasetup([cmd, bad]);
      assert.equal(r.code, 1, `${cmd}: ${r.stderr}`);
      assert.match(
        r.stderr,
        /^hasetup: invalid inventory \(nothing was changed on any host\):\n[\s\S]*bad\.yaml:1:10: cluster: expected a cluster name/,
      );
    }
    const inv = await unreachableInventory(dir);
    const limit = hasetup(['apply', inv, '--limit', 'web09']);
    assert.equal(limit.code, 2);
    assert.match(limit.stderr, /--limit: no host or group named web09/);
    const tags = hasetup(['apply', inv, '--tags', 'nginx']);
    assert.equal(tags.code, 2);
    assert.match(tags.stderr, /--tags: no role named nginx \(roles: common, firewall, /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('apply --json and status --json with every host unreachable: 1, and JSON that says so', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hasetup-exit-'));
  try {
    const inv = await unreachableInventory(dir);
    const a = hasetup(['apply', inv, '--json']);
    assert.equal(a.code, 1, a.stderr);
    const aj = JSON.parse(a.stdout) as { hosts: Record<string, { unreachable: number }>; unreachable: Record<string, string> };
    assert.deepEqual(Object.keys(aj.hosts).sort(), ['db01', 'lb01', 'lb02', 'web01']);
    for (const h of Object.values(aj.hosts)) assert.equal(h.unreachable, 1);
    assert.match(aj.unreachable.lb01, /^lb01 \(root@127\.0\.0\.11:\d+\): unreachable: connection refused$/);
    const s = hasetup(['status', inv, '--json']);
    assert.equal(s.code, 1);
    const sj = JSON.parse(s.stdout) as {
      vip: { address: string; holders: string[] };
      hosts: { name: string; reachable: boolean }[];
      problems: string[];
    };
    assert.deepEqual(sj.vip, { address: '127.0.0.100', holders: [] });
    assert.ok(sj.hosts.every((h) => !h.reachable));
    assert.ok(sj.problems.includes('VIP 127.0.0.100: on no load balancer'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unexpected error is one line, or its stack with --debug / HASETUP_DEBUG=1', (t) => {
  // `lab down` with its state folder under a file: an error no command foresees (the lab needs root first)
  if (!prerequisites(t, rootUnavailable())) return;
  const env = { HASETUP_LAB_STATE: '/dev/null/state' };
  const plain = hasetup(['lab', 'down'], env);
  assert.equal(plain.code, 1);
  assert.match(
    plain.stderr,
    /^hasetup: unexpected error: ENOTDIR: .+\n\(run again with --debug, or HASETUP_DEBUG=1, for the stack trace\)\n$/,
  );
  for (const r of [hasetup(['lab', 'down', '--debug'], env), hasetup(['lab', 'down'], { ...env, HASETUP_DEBUG: '1' })]) {
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: ENOTDIR: .+\n {4}at /, 'a stack trace');
  }
});
