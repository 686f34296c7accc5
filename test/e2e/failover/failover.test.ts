// End-to-end in the lab: `hasetup failover-test` on a freshly applied cluster, for both engines. All
// scenarios pass with the default thresholds; the JSON has every figure; the HTML report is written;
// the cluster is healthy afterwards (hasetup status says so). A run interrupted with SIGINT in the
// middle of the lb scenario still restores the master: its services run and the VIP is back on it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ctlNs, netnsPath } from '../../../cli/lab/net.ts';
import { labForFile, labUnavailable } from '../../helpers/lab.ts';
import { commandUnavailable, prerequisites } from '../../helpers/env.ts';
import { apply, HASETUP, inventoryFor, notOk, proxyLogProblems, sh, UNITS, waitVipOn, type EngineName } from '../../helpers/lb-lab.ts';
import type { FailoverReport } from '../../../cli/failover/types.ts';

const skip = labUnavailable() ?? commandUnavailable('curl');
const L = labForFile(skip);

const EXPECTED = ['web-stop', 'web-drop', 'lb-kill', 'lb-link', 'lb-stop', 'db', 'spike'];

for (const engine of ['bundled', 'haproxy'] as EngineName[]) {
  let inv = '';

  test(
    `[${engine}] failover-test: every scenario passes on a freshly applied cluster, with every figure in the JSON`,
    { timeout: 20 * 60_000 },
    async (t) => {
      if (!prerequisites(t, skip)) return;
      inv = await inventoryFor(L(), engine);
      const a = await apply(L(), inv);
      assert.equal(a.code, 0, notOk(a));
      // the apply ends on a settled cluster: the failover test starts at once on the right master
      const settled = await L().exec([process.execPath, HASETUP, 'status', inv]);
      assert.match(settled.stdout, /^VIP 10\.213\.0\.100: on lb01$/m, settled.stdout);
      assert.match(settled.stdout, /^lb02 .* BACKUP priority 100 /m, settled.stdout);
      const dir = L().config.stateDir;
      const json = join(dir, `failover-${engine}.json`);
      const html = join(dir, `failover-${engine}.html`);
      rmSync(json, { force: true });
      rmSync(html, { force: true });
      const t0 = Date.now();
      const r = await L().exec(
        [
          process.execPath,
          HASETUP,
          'failover-test',
          inv,
          '--json',
          json,
          '--report',
          html,
          '--spike-steps',
          '1,2,4',
          '--step-seconds',
          '4',
        ],
        { timeoutMs: 15 * 60_000 },
      );
      console.log(
        `# failover-test, runtime ${engine}: ${((Date.now() - t0) / 1000).toFixed(0)} s, exit ${r.code}\n${r.stdout
          .split('\n')
          .map((l) => `# ${l}`)
          .join('\n')}`,
      );
      if (r.code !== 0 && existsSync(json))
        for (const s of (JSON.parse(readFileSync(json, 'utf8')) as FailoverReport).scenarios)
          if (!s.passed) console.log(`# ${s.name}: failed requests ${JSON.stringify(s.failures.slice(0, 10))}`);
      // the proxies' own log of the requests that did not end normally (their termination flags say why)
      if (r.code !== 0) console.log((await proxyLogProblems(L(), engine)).replace(/^/gm, '# '));
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr.slice(-4000)}`);
      const report = JSON.parse(readFileSync(json, 'utf8')) as FailoverReport;
      assert.equal(report.engine, engine);
      assert.equal(report.passed, true);
      assert.equal(report.healthyAfter, true);
      assert.deepEqual(
        report.scenarios.map((s) => s.name),
        EXPECTED,
      );
      for (const s of report.scenarios) {
        assert.equal(typeof s.totalRequests, 'number', `${s.name}: totalRequests`);
        assert.equal(typeof s.failedRequests, 'number', `${s.name}: failedRequests`);
        assert.equal(typeof s.passed, 'boolean', `${s.name}: passed`);
        assert.ok(s.verdict.length > 10, `${s.name}: a verdict`);
        assert.ok(s.thresholds.length > 0 && s.thresholds.every((x) => x.passed), `${s.name}: ${JSON.stringify(s.thresholds)}`);
      }
      const by = (n: string) => report.scenarios.find((s) => s.name === n)!;
      for (const n of ['web-stop', 'web-drop']) {
        assert.equal(by(n).failedRequests, 0, `${n}: failed requests ${JSON.stringify(by(n).failures)}`);
        // within the scenario's own limit: the health check's worst case + 1 s by default (detectionLimit)
        const limit = by(n).thresholds.find((x) => x.figure === 'detectionMs')?.max;
        assert.ok(
          typeof by(n).detectionMs === 'number' && limit !== undefined && by(n).detectionMs! <= limit,
          `${n}: detection ${by(n).detectionMs} ms, limit ${limit}`,
        );
        assert.ok(typeof by(n).restoredMs === 'number', `${n}: restoredMs`);
        assert.ok(by(n).totalRequests > 1000, `${n}: ${by(n).totalRequests} requests`);
      }
      for (const n of ['lb-kill', 'lb-link', 'lb-stop']) {
        assert.ok(typeof by(n).takeoverMs === 'number', `${n}: takeoverMs`);
        assert.ok(typeof by(n).restoredMs === 'number', `${n}: restoredMs (the master took the VIP back)`);
        assert.equal(by(n).figures?.backup, 'lb02');
      }
      assert.ok(by('lb-kill').takeoverMs! < 1000, `hard failure takeover ${by('lb-kill').takeoverMs} ms`);
      // a dead daemon takes its VIP with it: the master's kill costs only the requests in flight on it
      const kill = by('lb-kill');
      assert.equal(typeof kill.figures?.vipLeftMasterMs, 'number', 'the VIP left the killed master');
      assert.equal(
        kill.figures?.failedNotInFlight,
        0,
        `failed requests not in flight on the LB that lost the VIP: ${JSON.stringify(kill.failures)}`,
      );
      assert.ok(
        kill.failedRequests <= (kill.figures!.connectionsOpenOnMaster as number) + (kill.figures!.connectionsOpenAtReturn as number),
        JSON.stringify(kill.figures),
      );
      console.log(
        `# ${engine} lb-kill: ${kill.failedRequests} failed of ${kill.totalRequests}: ${kill.figures!.failedInFlightOnMaster} in flight on ` +
          `${kill.figures!.connectionsOpenOnMaster} connections open on lb01, ${kill.figures!.failedInFlightAtReturn} at the return; VIP off lb01 ${kill.figures!.vipLeftMasterMs} ms after its daemon died`,
      );
      assert.ok(by('lb-stop').takeoverMs! < 300, `graceful takeover ${by('lb-stop').takeoverMs} ms`);
      assert.equal(by('db').figures?.writeReadOk, true);
      assert.deepEqual(
        by('spike').steps?.map((s) => s.rate),
        [100, 200, 400],
      );
      assert.ok(existsSync(html) && readFileSync(html, 'utf8').includes('lb-kill'));
      const st = await L().exec([process.execPath, HASETUP, 'status', inv]);
      assert.equal(st.code, 0, `status after the failover test:\n${st.stdout}`);
      assert.match(st.stdout, /^VIP 10\.213\.0\.100: on lb01$/m);
    },
  );

  test(
    `[${engine}] failover-test interrupted (SIGINT) in the lb scenario: lb01 is restored, services running and the VIP back on it`,
    { timeout: 10 * 60_000 },
    async (t) => {
      if (!prerequisites(t, skip)) return;
      assert.ok(inv, 'the cluster was applied');
      const child = spawn(
        'nsenter',
        [`--net=${netnsPath(ctlNs(L().config))}`, '--', process.execPath, HASETUP, 'failover-test', inv, '--scenarios', 'lb'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, CI: 'true' },
        },
      );
      let err = '';
      let out = '';
      child.stdout.on('data', (b) => (out += b));
      const killed = new Promise<void>((res) =>
        child.stderr.on('data', (b) => {
          err += b;
          // the master killed: interrupt while its fault is on
          if (
            /lb: the master killed .*: hasetup-vrrpd and hasetup-proxy killed|lb: the master killed .*: keepalived and haproxy killed/.test(
              err,
            )
          )
            res();
        }),
      );
      const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
      await Promise.race([killed, exited]);
      await new Promise((r) => setTimeout(r, 1500));
      child.kill('SIGINT');
      const code = await exited;
      assert.equal(code, 130, `exit ${code}\n${out}\n${err}`);
      assert.match(err, /interrupted: undoing every fault/);
      assert.match(err, /undoing: .*killed \(SIGKILL\) on lb01/);
      const units = UNITS[engine];
      assert.equal((await sh(L(), 'lb01', `systemctl is-active ${units.proxy} ${units.vrrp}`)).trim(), 'active\nactive');
      assert.equal(
        (
          await sh(
            L(),
            'lb01',
            `ls -d /run/systemd/system/${units.proxy}.service /run/systemd/system/${units.vrrp}.service /run/systemd/system/${units.proxy}.service.d /run/systemd/system/${units.vrrp}.service.d 2>/dev/null | wc -l`,
          )
        ).trim(),
        '0',
        'unmasked, and the no-restart drop-ins of the fault gone',
      );
      await waitVipOn(L(), 'lb01', 30_000);
    },
  );
}
