import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseConfig, splitCommand, ConfigError } from '../../../runtime/vrrpd/config.ts';

const FULL = `! Configuration File for keepalived
global_defs {
   router_id LB01
   vrrp_version 2
   notification_email {
     admin@example.org
   }
   vrrp_garp_master_refresh 60
}

vrrp_script chk_proxy {
    script "/usr/bin/pgrep -x 'hasetup proxy'"   # the local proxy
    interval 2
    timeout 3
    weight -40
    rise 2
    fall 3
}

vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass s3cr3tpassword
    }
    virtual_ipaddress {
        192.0.2.100/24 dev eth0 label eth0:vip
        192.0.2.101
    }
    virtual_ipaddress_excluded {
        198.51.100.1/32 dev eth1
    }
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
    }
    track_script {
        chk_proxy weight -60
    }
    track_interface {
        eth1 weight -10
        eth2
    }
    preempt_delay 30
    garp_master_delay 2
    notify_master "/etc/keepalived/notify.sh master"
    notify /etc/keepalived/notify-all.sh
}
`;

test('parses a keepalived.conf with every supported section', () => {
  const c = parseConfig('/etc/keepalived/keepalived.conf', FULL);
  assert.equal(c.global.routerId, 'LB01');
  assert.equal(c.global.garpMasterRefresh, 60);
  assert.deepEqual(c.scripts.chk_proxy.argv, ['/usr/bin/pgrep', '-x', 'hasetup proxy']);
  assert.equal(c.scripts.chk_proxy.interval, 2);
  assert.equal(c.scripts.chk_proxy.timeout, 3);
  assert.equal(c.scripts.chk_proxy.weight, -40);
  assert.equal(c.scripts.chk_proxy.rise, 2);
  assert.equal(c.instances.length, 1);
  const i = c.instances[0];
  assert.equal(i.name, 'VI_1');
  assert.equal(i.initialState, 'BACKUP');
  assert.equal(i.interface, 'eth0');
  assert.equal(i.vrid, 51);
  assert.equal(i.priority, 150);
  assert.equal(i.advertInt, 1);
  assert.equal(i.version, 2);
  assert.deepEqual(i.auth, { type: 'PASS', pass: 's3cr3tpa' });
  assert.deepEqual(i.vips, [
    { address: '192.0.2.100', prefix: 24, dev: 'eth0', label: 'eth0:vip', excluded: false },
    { address: '192.0.2.101', prefix: 32, dev: 'eth0', excluded: false },
    { address: '198.51.100.1', prefix: 32, dev: 'eth1', excluded: true },
  ]);
  assert.equal(i.unicastSrcIp, '192.0.2.1');
  assert.deepEqual(i.unicastPeers, ['192.0.2.2']);
  assert.deepEqual(
    i.trackScripts.map((t) => [t.name, t.weight]),
    [['chk_proxy', -60]],
  );
  assert.deepEqual(i.trackInterfaces, [
    { name: 'eth1', weight: -10 },
    { name: 'eth2', weight: 0 },
  ]);
  assert.equal(i.preemptDelay, 30);
  assert.equal(i.nopreempt, false);
  assert.equal(i.garpMasterDelay, 2);
  assert.equal(i.garpMasterRefresh, 60, 'the global default applies');
  assert.deepEqual(i.notify.master, ['/etc/keepalived/notify.sh', 'master']);
  assert.deepEqual(i.notify.any, ['/etc/keepalived/notify-all.sh']);
  // the e-mail settings and the long password are warned about, not errors
  assert.ok(c.warnings.some((w) => /notification_email/.test(w.message) && w.line === 5));
  assert.ok(c.warnings.some((w) => /first 8/.test(w.message)));
});

test('vrrp_version 3 in global_defs or per instance; fractional advert_int', () => {
  const c = parseConfig(
    'k.conf',
    `global_defs {\n vrrp_version 3\n}\nvrrp_instance A {\n interface e0\n virtual_router_id 1\n advert_int 0.2\n virtual_ipaddress {\n 10.0.0.1/24\n }\n}\nvrrp_instance B {\n version 2\n interface e0\n virtual_router_id 2\n nopreempt\n}\n`,
  );
  assert.equal(c.instances[0].version, 3);
  assert.equal(c.instances[0].advertInt, 0.2);
  assert.equal(c.instances[1].version, 2);
  assert.equal(c.instances[1].nopreempt, true);
  assert.equal(c.instances[1].initialState, 'BACKUP');
  assert.equal(c.instances[1].priority, 100);
});

function errorsOf(text: string): string[] {
  try {
    parseConfig('k.conf', text);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.errors.map((m) => `${m.file}:${m.line}: ${m.message}`);
  }
  assert.fail('expected a ConfigError');
}

test('errors carry file:line: bad values, missing pieces, bad references', () => {
  assert.deepEqual(errorsOf('vrrp_instance A {\n interface e0\n virtual_router_id 256\n}\n'), [
    "k.conf:3: virtual_router_id: '256' is not an integer in 1..255",
  ]);
  assert.deepEqual(errorsOf('vrrp_instance A {\n interface e0\n virtual_router_id 1\n advert_int 0.5\n}\n'), [
    'k.conf:4: advert_int 0.5: VRRPv2 needs whole seconds (1..255); use vrrp_version 3 for sub-second intervals',
  ]);
  assert.deepEqual(errorsOf('vrrp_instance A {\n virtual_router_id 1\n}\n'), ['k.conf:1: vrrp_instance A: interface is required']);
  assert.deepEqual(errorsOf('vrrp_instance A {\n interface e0\n virtual_router_id 1\n track_script {\n  nope\n }\n}\n'), [
    'k.conf:5: track_script: no vrrp_script named nope',
  ]);
  assert.deepEqual(errorsOf('vrrp_instance A {\n interface e0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.300/24\n }\n}\n'), [
    "k.conf:5: '10.0.0.300/24' is not an IPv4 address (A.B.C.D or A.B.C.D/NN)",
  ]);
  assert.deepEqual(errorsOf('vrrp_instance A {\n interface e0\n virtual_router_id 1\n'), ["k.conf:1: '{' is never closed"]);
  assert.deepEqual(
    errorsOf('vrrp_instance A {\n interface e0\n virtual_router_id 1\n}\nvrrp_instance B {\n interface e0\n virtual_router_id 1\n}\n'),
    ['k.conf:5: vrrp_instance B: virtual_router_id 1 on e0 is already used by A'],
  );
  assert.deepEqual(errorsOf('vrrp_sync_group G {\n group {\n A\n }\n}\n'), ['k.conf:1: vrrp_sync_group is not supported by hasetup-vrrpd']);
});

test('nopreempt and preempt_delay with state MASTER are ignored with a warning, as keepalived does', () => {
  const c = parseConfig(
    'k.conf',
    'vrrp_instance A {\n state MASTER\n nopreempt\n preempt_delay 10\n interface e0\n virtual_router_id 1\n}\n',
  );
  assert.equal(c.instances[0].nopreempt, false);
  assert.equal(c.instances[0].preemptDelay, 0);
  assert.deepEqual(
    c.warnings.filter((w) => /preempt/.test(w.message)).map((w) => `${w.line}: ${w.message}`),
    [
      '1: vrrp_instance A: nopreempt does not work with state MASTER: ignored',
      '1: vrrp_instance A: preempt_delay does not work with state MASTER: ignored',
    ],
  );
});

test('include: relative paths and patterns, errors point into the included file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vrrpd-conf-'));
  try {
    writeFileSync(join(dir, 'keepalived.conf'), 'include conf.d/*.conf\n');
    spawnSync('mkdir', [join(dir, 'conf.d')]);
    writeFileSync(join(dir, 'conf.d', 'a.conf'), 'vrrp_instance A {\n interface e0\n virtual_router_id 1\n}\n');
    writeFileSync(join(dir, 'conf.d', 'b.conf'), 'vrrp_instance B {\n interface e0\n virtual_router_id 2\n}\n');
    assert.deepEqual(
      parseConfig(join(dir, 'keepalived.conf')).instances.map((i) => i.name),
      ['A', 'B'],
    );
    writeFileSync(join(dir, 'conf.d', 'b.conf'), 'vrrp_instance B {\n interface e0\n  virtual_router_id 300\n}\n');
    try {
      parseConfig(join(dir, 'keepalived.conf'));
      assert.fail('expected an error');
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.errors[0].file, join(dir, 'conf.d', 'b.conf'));
      assert.equal(e.errors[0].line, 3);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('command splitting follows keepalived quoting', () => {
  assert.deepEqual(splitCommand(`/bin/sh -c 'kill -0 $(cat /run/x.pid)'`), ['/bin/sh', '-c', 'kill -0 $(cat /run/x.pid)']);
  assert.deepEqual(splitCommand('a "b c" d\\ e'), ['a', 'b c', 'd e']);
  assert.deepEqual(splitCommand('  '), []);
});

test('hasetup-vrrpd -t: exit 0 for a valid file, 1 with file:line errors', (t) => {
  const bundle = join(process.cwd(), 'dist/runtime/hasetup-vrrpd.cjs');
  const dir = mkdtempSync(join(tmpdir(), 'vrrpd-t-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.conf');
  const bad = join(dir, 'bad.conf');
  writeFileSync(good, FULL);
  writeFileSync(bad, 'vrrp_instance A {\n interface e0\n virtual_router_id 1\n priority high\n}\n');
  const ok = spawnSync(process.execPath, [bundle, '-t', '-f', good], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /configuration OK/);
  const ko = spawnSync(process.execPath, [bundle, '--config-test', '-f', bad], { encoding: 'utf8' });
  assert.equal(ko.status, 1);
  assert.equal(ko.stderr.trim(), `${bad}:4: priority: 'high' is not an integer in 1..255`);
  // an unknown keyword: -t fails (as keepalived -t does), the daemon would run without it
  const unknown = join(dir, 'unknown.conf');
  writeFileSync(unknown, FULL.replace('virtual_router_id', 'vrrp_version 3\n    virtual_router_id'));
  const ku = spawnSync(process.execPath, [bundle, '-t', '-f', unknown], { encoding: 'utf8' });
  assert.equal(ku.status, 1, ku.stdout);
  assert.match(ku.stderr, new RegExp(`${unknown}:\\d+: Unknown keyword 'vrrp_version' in vrrp_instance`));
  assert.match(ku.stderr, /1 unknown keyword: keepalived -t fails on it too/);
  const missing = spawnSync(process.execPath, [bundle, '-t', '-f', join(dir, 'nope.conf')], { encoding: 'utf8' });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /cannot read/);
});

function unknownsOf(text: string): string[] {
  return parseConfig('k.conf', text).unknowns.map((m) => `${m.line}: ${m.message}`);
}

const INSTANCE = (body: string) => `vrrp_instance A {\n interface e0\n virtual_router_id 1\n${body}}\n`;

test("a keyword keepalived 2.2.7 does not know in that place: 'Unknown keyword', ignored (not an error), as keepalived does", () => {
  // the case: keepalived reads vrrp_version in an instance as unknown and runs VRRPv2; so do we
  const c = parseConfig('k.conf', INSTANCE(' vrrp_version 3\n'));
  assert.equal(c.instances[0].version, 2, 'ignored: the instance stays at the global version');
  assert.deepEqual(
    c.unknowns.map((m) => `${m.line}: ${m.message}`),
    [
      "4: Unknown keyword 'vrrp_version' in vrrp_instance A (in a vrrp_instance the keyword is 'version'; vrrp_version belongs in global_defs): ignored, as keepalived ignores it",
    ],
  );
  // each keyword below is accepted by keepalived in some other place only (checked with keepalived -t -f)
  const cases: [string, string, RegExp][] = [
    [INSTANCE(' vrrp_garp_master_delay 2\n'), 'vrrp_garp_master_delay', /the keyword is 'garp_master_delay'/],
    [INSTANCE(' router_id lb01\n'), 'router_id', /belongs in global_defs/],
    [INSTANCE(' interval 3\n'), 'interval', /belongs in a vrrp_script/],
    ['global_defs {\n garp_master_delay 3\n}\n', 'garp_master_delay', /the keyword is 'vrrp_garp_master_delay'/],
    ['global_defs {\n preempt\n}\n', 'preempt', /belongs in a vrrp_instance/],
    ['global_defs {\n version 3\n}\n', 'version', /the keyword is 'vrrp_version'/],
    ['global_defs {\n lvs_id lb01\n}\n', 'lvs_id', /in global_defs: ignored/],
    ['vrrp_script s {\n script /bin/true\n priority 3\n}\n', 'priority', /with weight/],
    ['vrrp_script s {\n script /bin/true\n garp_master_delay 3\n}\n', 'garp_master_delay', /in vrrp_script: ignored/],
    [INSTANCE(' authentication {\n  auth_type PASS\n  auth_pass x\n  bogus 1\n }\n'), 'bogus', /in authentication: ignored/],
    [INSTANCE(' prority 100\n'), 'prority', /in vrrp_instance A: ignored/],
    ['bogus_section {\n a 1\n}\n', 'bogus_section', /^Unknown keyword 'bogus_section': ignored/],
  ];
  for (const [text, kw, re] of cases) {
    const u = parseConfig('k.conf', text).unknowns;
    assert.equal(u.length, 1, `${kw}: ${JSON.stringify(u)}`);
    assert.match(u[0].message, new RegExp(`^Unknown keyword '${kw}'`));
    assert.match(u[0].message, re);
  }
  // in their own place they are known
  assert.deepEqual(unknownsOf(INSTANCE(' version 3\n garp_master_delay 2\n')), []);
  assert.deepEqual(unknownsOf('global_defs {\n vrrp_version 3\n vrrp_garp_master_delay 2\n router_id x\n}\n'), []);
});
