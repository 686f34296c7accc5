// End-to-end in the lab: `hasetup apply` of the base roles (common, firewall) over real SSH to the
// five lab hosts: first run changes, second run changes nothing, drift shown and restored, secrets
// never printed, each host's open ports exactly the expected ones, VRRP only between the LBs, a
// firewall change that would cut the controller off rolled back by the host itself, an
// unreachable host named in one line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { parse } from 'yaml';
import { TestLab } from '../../../harness/lab-cli.ts';
import { ROLE_NAMES } from '../../../roles/index.ts';
import { prerequisites, rootUnavailable, commandUnavailable } from '../../helpers/env.ts';

const skip = rootUnavailable() ?? commandUnavailable('python3');
const lab = new TestLab('e2eb');
const TAGS = ['--tags', 'common,firewall'];
let upOk = false;

interface Recap {
  ok: number;
  changed: number;
  failed: number;
  unreachable: number;
  skipped: number;
}
function recap(stdout: string): Record<string, Recap> {
  return JSON.parse(stdout).hosts;
}

before(async () => {
  if (skip) return;
  await lab.up();
  upOk = true;
});
after(async () => {
  if (upOk) await lab.down();
});

test('first apply changes every host, the second changes nothing', async (t) => {
  if (!prerequisites(t, skip)) return;
  const first = await lab.apply([...TAGS, '--json']);
  assert.equal(first.code, 0, first.stdout + first.stderr);
  const r1 = recap(first.stdout);
  assert.deepEqual(Object.keys(r1).sort(), ['db01', 'lb01', 'lb02', 'web01', 'web02']);
  for (const [h, r] of Object.entries(r1)) {
    assert.ok(r.changed > 0, `${h} changed`);
    assert.equal(r.failed + r.unreachable, 0, h);
  }
  const second = await lab.apply([...TAGS, '--json']);
  assert.equal(second.code, 0, second.stderr);
  for (const [h, r] of Object.entries(recap(second.stdout))) assert.equal(r.changed, 0, `${h}: ${second.stdout}`);
  console.log(`# no-change apply of common+firewall on 5 hosts: ${second.ms} ms (wall, including node start)`);
  assert.equal(readFileSync(lab.inventory.replace(/\.yaml$/, '.secrets.yaml')).length > 0, true);
});

test('status: every host up, its firewall loaded, no LB holding the VIP yet (a problem: exit 1)', async (t) => {
  if (!prerequisites(t, skip)) return;
  const r = await lab.exec([process.execPath, 'bin/hasetup.js', 'status', lab.inventory]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  // one line per host: its group, its address, its units (the roles not applied yet: inactive) and the firewall loaded
  for (const h of ['lb01', 'lb02', 'web01', 'web02', 'db01'])
    assert.match(r.stdout, new RegExp(`^${h} +(lb|web|db) +10\\.213\\.0\\.\\d+ +.*\\bfirewall\\b`, 'm'));
  assert.match(r.stdout, /^VIP 10\.213\.0\.100: on no load balancer$/m);
  const j = JSON.parse((await lab.exec([process.execPath, 'bin/hasetup.js', 'status', lab.inventory, '--json'])).stdout);
  assert.equal(j.hosts.length, 5);
  assert.ok(
    j.hosts.every((h: { reachable: boolean; firewall?: string }) => h.reachable && h.firewall === 'loaded'),
    JSON.stringify(j.hosts),
  );
  assert.ok(j.problems.includes('VIP 10.213.0.100: on no load balancer'), JSON.stringify(j.problems));
});

test('drift: a hand-edited file is shown by --check --diff, left alone, then restored by apply', async (t) => {
  if (!prerequisites(t, skip)) return;
  const edit = await lab.ssh('web01', "echo '10.9.9.9 intruder' >> /etc/hosts");
  assert.equal(edit.code, 0, edit.stderr);
  const check = await lab.apply([...TAGS, '--check', '--diff', '--limit', 'web01']);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /web01 \| common \| \/etc\/hosts: would change/);
  assert.match(check.stdout, /^ +-10\.9\.9\.9 intruder$/m);
  assert.match((await lab.ssh('web01', 'cat /etc/hosts')).stdout, /intruder/, '--check changed nothing');
  const fix = await lab.apply([...TAGS, '--limit', 'web01']);
  assert.equal(fix.code, 0);
  assert.match(fix.stdout, /web01 \| common \| \/etc\/hosts: changed/);
  assert.doesNotMatch((await lab.ssh('web01', 'cat /etc/hosts')).stdout, /intruder/);
});

test('no secret appears in the output of a run with --diff', async (t) => {
  if (!prerequisites(t, skip)) return;
  const secrets = Object.values(parse(readFileSync(lab.inventory.replace(/\.yaml$/, '.secrets.yaml'), 'utf8')) as Record<string, string>);
  assert.ok(secrets.length >= 5);
  const runs = [await lab.apply(['--diff']), await lab.apply(['--check', '--diff']), await lab.apply(['--json'])];
  for (const r of runs) for (const s of secrets) assert.ok(!(r.stdout + r.stderr).includes(s), 'a secret was printed');
});

test('each host has exactly the expected TCP ports open to the controller', async (t) => {
  if (!prerequisites(t, skip)) return;
  const inv = parse(readFileSync(lab.inventory, 'utf8'));
  // Everything applied so far (the secrets test ran every role): SSH everywhere; from the
  // controller (an admin address) the LBs' service port and the web nodes' port 80 when the roles
  // serving them exist; never MySQL, which only the web nodes may reach.
  const roles = new Set(ROLE_NAMES);
  const expected: Record<string, number[]> = {
    lb: roles.has('proxy') ? [22, 80] : [22],
    web: roles.has('apache') ? [22, 80] : [22],
    db: [22],
  };
  for (const group of ['lb', 'web', 'db'])
    for (const h of inv.hosts[group] as { name: string; address: string }[]) {
      const r = await lab.exec([process.execPath, '--import', 'tsx', 'test/helpers/portscan.ts', h.address, '1-1024', '3306']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), expected[group], `${h.name}: ${r.stdout}`);
    }
  if (roles.has('mysql')) {
    const probe = "timeout 3 bash -c '</dev/tcp/10.213.0.31/3306' 2>/dev/null && echo open || echo closed";
    assert.equal((await lab.ssh('web01', probe)).stdout.trim(), 'open', 'MySQL reachable from a web node');
    assert.equal((await lab.ssh('lb01', probe)).stdout.trim(), 'closed', 'but not from a load balancer');
  }
});

/**
 * Sends one raw IP protocol 112 packet (virtual router 99, which no LB uses) from a lab host's
 * namespace to lb02 and tells whether lb02 received it. The listener ignores every other packet:
 * once the LB tier runs, lb02 also receives lb01's own adverts.
 */
async function vrrpReaches(from: string): Promise<boolean> {
  const listener = spawn(
    'ip',
    [
      'netns',
      'exec',
      lab.netns('lb02'),
      'python3',
      '-c',
      [
        'import socket,time',
        's=socket.socket(socket.AF_INET,socket.SOCK_RAW,112)',
        'end=time.time()+3',
        'seen="none"',
        'while time.time()<end:',
        ' s.settimeout(max(0.01,end-time.time()))',
        ' try:',
        '  d,a=s.recvfrom(2048)',
        ' except socket.timeout:',
        '  break',
        ' h=(d[0]&15)*4',
        ' if len(d)>h+1 and d[h+1]==99:',
        '  seen=a[0]; break',
        'print(seen)',
      ].join('\n'),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  listener.stdout.on('data', (b) => (out += b));
  const done = new Promise((r) => listener.on('close', r));
  await new Promise((r) => setTimeout(r, 500));
  const send = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      lab.netns(from),
      'python3',
      '-c',
      "import socket; s=socket.socket(socket.AF_INET,socket.SOCK_RAW,112); s.sendto(bytes([0x21,99,1,1,0,1,0,0])+bytes(8),('10.213.0.12',0))",
    ],
    { encoding: 'utf8' },
  );
  assert.equal(send.status, 0, send.stderr);
  await done;
  return out.trim() !== 'none';
}

test('VRRP (IP protocol 112) reaches lb02 from lb01, not from web01', async (t) => {
  if (!prerequisites(t, skip)) return;
  assert.equal(await vrrpReaches('lb01'), true);
  assert.equal(await vrrpReaches('web01'), false);
});

test('a firewall change that would cut the controller off is rolled back by the host itself', async (t) => {
  if (!prerequisites(t, skip)) return;
  const wrong = lab.inventory.replace(/\.yaml$/, '-wrong.yaml');
  writeFileSync(wrong, readFileSync(lab.inventory, 'utf8').replace('10.213.0.10/32', '10.213.0.250/32'));
  writeFileSync(wrong.replace(/\.yaml$/, '.secrets.yaml'), readFileSync(lab.inventory.replace(/\.yaml$/, '.secrets.yaml')), {
    mode: 0o600,
  });
  const r = await lab.apply(['--tags', 'firewall', '--limit', 'web02'], wrong);
  assert.equal(r.code, 1, r.stdout);
  assert.match(
    r.stdout,
    /web02 \| firewall \| ruleset \(atomic, with rollback\): failed \(the change cut new SSH connections from the controller .*rolled back by the host itself\)/,
  );
  const after = await lab.apply([...TAGS, '--limit', 'web02', '--json']);
  assert.equal(after.code, 0, 'host still reachable');
  assert.equal(recap(after.stdout).web02.changed, 0, 'and its rules are the good ones again');
});

test('an unreachable host gets one clear line and a non-zero exit', async (t) => {
  if (!prerequisites(t, skip)) return;
  const gone = lab.inventory.replace(/\.yaml$/, '-gone.yaml');
  writeFileSync(gone, readFileSync(lab.inventory, 'utf8').replace('10.213.0.22', '10.213.0.29'));
  writeFileSync(gone.replace(/\.yaml$/, '.secrets.yaml'), readFileSync(lab.inventory.replace(/\.yaml$/, '.secrets.yaml')), { mode: 0o600 });
  const r = await lab.apply([...TAGS, '--limit', 'web'], gone);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^UNREACHABLE web02 \(root@10\.213\.0\.29:22\): unreachable: (no answer within \d+s|no route to host)$/m);
  assert.match(r.stdout, /web01 +ok=\d+ +changed=\d+ +failed=0 +unreachable=0/, 'the other host is applied all the same');
});

test('a non-root SSH user works through sudo', async (t) => {
  if (!prerequisites(t, skip)) return;
  const setup = await lab.ssh(
    'web01',
    'id deploy >/dev/null 2>&1 || useradd -m -s /bin/sh deploy; mkdir -p ~deploy/.ssh; cp /root/.ssh/authorized_keys ~deploy/.ssh/; ' +
      'chown -R deploy: ~deploy/.ssh; echo "deploy ALL=(ALL) NOPASSWD: ALL" > /etc/sudoers.d/deploy; chmod 0440 /etc/sudoers.d/deploy; ' +
      "echo '10.9.9.8 drift' >> /etc/hosts",
  );
  assert.equal(setup.code, 0, setup.stderr);
  const asDeploy = lab.inventory.replace(/\.yaml$/, '-deploy.yaml');
  const text = readFileSync(lab.inventory, 'utf8').replace(
    /(- name: web01\n(\s+)address: 10\.213\.0\.21\n)/,
    '$1$2ssh: { user: deploy }\n',
  );
  assert.match(text, /ssh: \{ user: deploy \}/);
  writeFileSync(asDeploy, text);
  writeFileSync(asDeploy.replace(/\.yaml$/, '.secrets.yaml'), readFileSync(lab.inventory.replace(/\.yaml$/, '.secrets.yaml')), {
    mode: 0o600,
  });
  const r = await lab.apply([...TAGS, '--limit', 'web01'], asDeploy);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /web01 \| common \| \/etc\/hosts: changed/, 'a root-owned file was fixed by the deploy user, through sudo');
  assert.doesNotMatch((await lab.ssh('web01', 'cat /etc/hosts')).stdout, /drift/);
});
