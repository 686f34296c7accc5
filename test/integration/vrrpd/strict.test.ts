// Strict as keepalived 2.2.7: each keyword written in a place where keepalived does not know it gets keepalived's
// "Unknown keyword" from `hasetup-vrrpd -t` (which then fails, as `keepalived -t` does), and a keyword keepalived
// knows there gets none. Judged against the real keepalived on the same files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prerequisites, commandUnavailable } from '../../helpers/env.ts';

const bundle = join(process.cwd(), 'dist/runtime/hasetup-vrrpd.cjs');

// [scope, line]: every keyword our parser knows, in the scope it knows it, and the misplaced ones users write
const GLOBAL = [
  'router_id lb01',
  'vrrp_version 2',
  'script_user root',
  'enable_script_security',
  'vrrp_garp_master_delay 5',
  'vrrp_garp_master_repeat 5',
  'vrrp_garp_master_refresh 60',
  'vrrp_garp_master_refresh_repeat 1',
  'smtp_server 127.0.0.1',
  'vrrp_strict',
  'vrrp_skip_check_adv_addr',
  'lvs_id lb01',
  'garp_master_delay 3',
  'preempt',
  'version 3',
  'priority 100',
  'advert_int 1',
];
const SCRIPT = [
  'script "/bin/true"',
  'interval 2',
  'timeout 2',
  'weight 2',
  'rise 1',
  'fall 1',
  'init_fail',
  'priority 3',
  'garp_master_delay 2',
  'advert_int 1',
];
const INSTANCE = [
  'priority 100',
  'advert_int 1',
  'version 2',
  'nopreempt',
  'preempt',
  'preempt_delay 0',
  'dont_track_primary',
  'notify /bin/true',
  'notify_master /bin/true',
  'garp_master_delay 5',
  'garp_master_repeat 5',
  'garp_master_refresh 0',
  'garp_master_refresh_repeat 1',
  'smtp_alert',
  'vrrp_version 3',
  'vrrp_garp_master_delay 2',
  'router_id xx',
  'interval 3',
  'weight 2',
  'rise 2',
  'script_user root',
];

function config(): { text: string; lines: Map<number, string> } {
  const out: string[] = [];
  const lines = new Map<number, string>();
  const block = (head: string, body: string[]) => {
    out.push(`${head} {`);
    for (const l of body) {
      out.push(`    ${l}`);
      lines.set(out.length, `${head.split(' ')[0]}: ${l}`);
    }
  };
  block('global_defs', GLOBAL);
  out.push('}');
  block('vrrp_script chk', SCRIPT);
  out.push('}');
  block('vrrp_instance VI_1', ['state BACKUP', 'interface eth0', 'virtual_router_id 51', ...INSTANCE]);
  out.push('    virtual_ipaddress {', '        192.0.2.10/32', '    }', '}');
  return { text: out.join('\n') + '\n', lines };
}

test('Unknown keyword where keepalived 2.2.7 says so, and nowhere else', (t) => {
  if (!prerequisites(t, commandUnavailable('keepalived'))) return;
  const dir = mkdtempSync(join(tmpdir(), 'vrrpd-strict-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'keepalived.conf');
  const { text, lines } = config();
  writeFileSync(file, text);
  const ka = spawnSync('keepalived', ['-t', '-f', file], { encoding: 'utf8' });
  const theirs = new Set([...(ka.stdout + ka.stderr).matchAll(/Line (\d+)\) Unknown keyword/g)].map((m) => Number(m[1])));
  assert.ok(theirs.size >= 5, `keepalived reported unknown keywords: ${ka.stderr}`);
  const ours = spawnSync(process.execPath, [bundle, '-t', '-f', file], { encoding: 'utf8' });
  const mine = new Set([...ours.stderr.matchAll(/:(\d+): Unknown keyword/g)].map((m) => Number(m[1])));
  const differ = [...lines]
    .filter(([n]) => theirs.has(n) !== mine.has(n))
    .map(([n, l]) => `line ${n} (${l}): keepalived ${theirs.has(n) ? 'unknown' : 'known'}, ours ${mine.has(n) ? 'unknown' : 'known'}`);
  assert.deepEqual(differ, []);
  assert.notEqual(ka.status, 0, 'keepalived -t fails on unknown keywords');
  assert.equal(ours.status, 1, 'and so does ours');
});
