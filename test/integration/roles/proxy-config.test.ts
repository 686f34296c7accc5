// The proxy role's haproxy.cfg, as rendered for the lab inventory with and without HTTPS, is accepted by
// both engines' own checks (haproxy -c, hasetup-proxy -c), the certificate the inventory generated
// included. What the file says: test/unit/roles/lb.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import proxy from '../../../roles/proxy/index.ts';
import { TLS_PEM } from '../../../roles/lb.ts';
import { ERROR_503, errorPage503 } from '../../../roles/proxy/errorpage.ts';
import { roleContext } from '../../../cli/engine/role.ts';
import { loadInventory } from '../../../inventory/load.ts';
import type { Facts } from '../../../cli/engine/facts.ts';
import type { Inventory } from '../../../inventory/types.ts';
import { prerequisites, commandUnavailable } from '../../helpers/env.ts';
import { proxyBin, ensureBuilt } from '../proxy/helpers.ts';

const facts = { hostname: 'lb01', arch: 'x86_64', memoryMb: 2048, container: true, records: {} } as unknown as Facts;

function config(inv: Inventory): string {
  const peers = new Map(inv.hosts.map((h) => [h.name, facts]));
  const t = proxy.tasks(roleContext(proxy, inv.hosts[0], inv, facts, peers)).find((x) => x.name === 'haproxy.cfg')!;
  const p = t.op.plan('absent', { facts, earlierChange: false });
  assert.ok(p.changed && p.stdin);
  return p.stdin.toString();
}

test('both engines accept the rendered haproxy.cfg: plain HTTP, HTTPS, HTTPS with the redirect', async (t) => {
  if (!prerequisites(t, commandUnavailable('haproxy'))) return;
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'hasetup-proxycfg-'));
  try {
    for (const tls of ['', 'tls: {}', 'tls: { redirect: true }']) {
      const file = join(dir, 'inventory.yaml');
      copyFileSync('inventory/examples/lab.yaml', file);
      if (tls) writeFileSync(file, readFileSync(file, 'utf8').replace(/^ {2}proxy:\n/m, `  proxy:\n    ${tls}\n`));
      const inv = await loadInventory(file);
      assert.equal(Boolean(inv.roles.proxy.tls), Boolean(tls));
      let cfg = config(inv);
      if (inv.roles.proxy.tls) {
        const pem = join(dir, 'site.pem');
        writeFileSync(pem, inv.roles.proxy.tls.pem, { mode: 0o600 });
        assert.ok(cfg.includes(TLS_PEM));
        cfg = cfg.replaceAll(TLS_PEM, pem);
      }
      // the 503 page the role writes beside it (errorfile); cookie persistence (the lab runs PHP)
      assert.ok(cfg.includes(ERROR_503) && /^ {4}cookie SERVERID insert /m.test(cfg));
      writeFileSync(join(dir, '503.http'), errorPage503());
      cfg = cfg.replaceAll(ERROR_503, join(dir, '503.http'));
      writeFileSync(join(dir, 'haproxy.cfg'), cfg);
      for (const [name, cmd, args] of [
        ['haproxy -c', 'haproxy', ['-c', '-q', '-f', join(dir, 'haproxy.cfg')]],
        ['hasetup-proxy -c', process.execPath, [proxyBin, '-c', '-q', '-f', join(dir, 'haproxy.cfg')]],
      ] as const) {
        const r = spawnSync(cmd, args, { encoding: 'utf8' });
        assert.doesNotMatch(r.stdout + r.stderr, /WARNING|ALERT/, name);
        assert.equal(r.status, 0, `${name} (${tls || 'plain'}): ${r.stdout}${r.stderr}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
