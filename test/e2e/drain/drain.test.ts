// End-to-end in the lab, both engines: maintenance without anyone noticing. Under a bounded load
// through the VIP (keep-alive and new connections), `drain web01 --maint`, an Apache restart on web01
// and `undrain web01` lose no request, and web01 serves nothing between drain and undrain, then its
// share again; a change that restarts Apache applied with --rolling web loses none either (without
// --rolling the test says what happens); the state survives an apply; draining the last web node
// that serves is refused; a drain interrupted while it waits leaves the node drained and says how to
// undo it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ctlNs, netnsPath } from '../../../cli/lab/net.ts';
import { labForFile, labUnavailable } from '../../helpers/lab.ts';
import { commandUnavailable, prerequisites } from '../../helpers/env.ts';
import {
  apply,
  appliedCluster,
  HASETUP,
  loadThroughVip,
  notOk,
  proxyLogProblems,
  sh,
  VIP_ADDRESS,
  type EngineName,
} from '../../helpers/lb-lab.ts';

const skip = labUnavailable() ?? commandUnavailable('curl');
const L = labForFile(skip);
const webs = () =>
  L()
    .hosts.filter((h) => h.group === 'web')
    .map((h) => h.name);
const hasetup = (args: string[], timeoutMs = 300_000) => L().exec([process.execPath, HASETUP, ...args], { timeoutMs });

interface Req {
  at: number;
  node: string | null;
  status: number;
  error: string | null;
}

/** Each LB's view of a web node, from hasetup status --json. */
async function statesOf(inv: string, web: string): Promise<string[]> {
  const r = await hasetup(['status', inv, '--json']);
  const st = JSON.parse(r.stdout) as { hosts: { group: string; servers?: { server: string; status: string }[] }[] };
  return st.hosts.filter((h) => h.group === 'lb').map((h) => h.servers?.find((s) => s.server === web)?.status ?? 'absent');
}

/** Each LB's sessions on a web node, from hasetup status --json. */
async function sessionsOf(inv: string, web: string): Promise<number[]> {
  const r = await hasetup(['status', inv, '--json']);
  const st = JSON.parse(r.stdout) as { hosts: { group: string; servers?: { server: string; sessions: number }[] }[] };
  return st.hosts.filter((h) => h.group === 'lb').map((h) => h.servers?.find((s) => s.server === web)?.sessions ?? 0);
}

for (const engine of ['bundled', 'haproxy'] as EngineName[]) {
  let inv = '';

  test(
    `[${engine}] drain --maint, an Apache restart and undrain under load: no request lost, nothing served by web01 in between`,
    { timeout: 10 * 60_000 },
    async (t) => {
      if (!prerequisites(t, skip)) return;
      inv = await appliedCluster(L(), engine);
      const file = join(L().config.stateDir, `drain-${engine}.json`);
      rmSync(file, { force: true });
      // on until 12 s after the undrain, however long the steps take (at most 150 s)
      const stop = join(L().config.stateDir, `drain-${engine}.stop`);
      rmSync(stop, { force: true });
      const loading = loadThroughVip(L(), 120, 150_000, 0, file, undefined, undefined, stop);
      await new Promise((r) => setTimeout(r, 3000));
      const d = await hasetup(['drain', inv, 'web01', '--maint', '--wait', '30']);
      assert.equal(d.code, 0, d.stdout + d.stderr);
      assert.match(d.stdout, /^web01: DRAIN on lb02 and lb01/m, 'the backup first');
      assert.match(d.stdout, /^web01: no session left on lb02 or lb01/m);
      assert.match(d.stdout, /^web01: MAINT on both LBs/m);
      const drained = Date.now();
      assert.deepEqual(await statesOf(inv, 'web01'), ['MAINT', 'MAINT']);
      // the state survives an apply (recorded on the LBs, kept in haproxy.cfg)
      const again = await apply(L(), inv);
      assert.equal(again.code, 0, notOk(again));
      assert.deepEqual(await statesOf(inv, 'web01'), ['MAINT', 'MAINT']);
      await sh(L(), 'web01', 'systemctl restart apache2');
      await new Promise((r) => setTimeout(r, 2000));
      const undrainAt = Date.now();
      const u = await hasetup(['undrain', inv, 'web01']);
      assert.equal(u.code, 0, u.stdout + u.stderr);
      assert.match(u.stdout, /^web01: READY on lb02 and lb01, UP in both proxies, and serving through the VIP$/m);
      await new Promise((r) => setTimeout(r, 12_000));
      writeFileSync(stop, '');
      const load = await loading;
      rmSync(stop, { force: true });
      if (load.failed) console.log((await proxyLogProblems(L(), engine)).replace(/^/gm, '# '));
      assert.equal(load.failed, 0, JSON.stringify(load.failures));
      assert.ok(load.total >= 100 * 40, `${load.total} requests`);
      const reqs = JSON.parse(readFileSync(file, 'utf8')) as Req[];
      // requests sent once the drain was done and before the undrain began: none reached web01
      const between = reqs.filter((r) => r.at > drained && r.at < undrainAt);
      assert.ok(between.length > 500, `${between.length} requests between drain and undrain`);
      assert.deepEqual(
        between.filter((r) => r.node === 'web01'),
        [],
      );
      // and after: its share again
      const afterwards = reqs.filter((r) => r.at > undrainAt + 8000);
      const share = afterwards.filter((r) => r.node === 'web01').length / afterwards.length;
      assert.ok(
        afterwards.length > 100 && Math.abs(share - 1 / webs().length) < 0.1,
        `web01 served ${(share * 100).toFixed(0)} % of ${afterwards.length} requests after the undrain`,
      );
    },
  );

  test(
    `[${engine}] a change that restarts Apache: with --rolling web no request is lost (and without it, the test says what is lost)`,
    { timeout: 10 * 60_000 },
    async (t) => {
      if (!prerequisites(t, skip)) return;
      // MaxRequestWorkers changed: the apache role restarts Apache on every web node
      const withWorkers = (n: number | 'auto') => {
        const text = readFileSync(inv, 'utf8')
          .replace(/\n {2}apache:\n {4}workers: \S+\n/, '\n')
          .replace(/^roles:\n/m, `roles:\n  apache:\n    workers: ${n}\n`);
        writeFileSync(inv, text);
      };
      withWorkers(75);
      const loading = loadThroughVip(L(), 120, 40_000);
      await new Promise((r) => setTimeout(r, 2000));
      const r = await L().exec([process.execPath, HASETUP, 'apply', inv, '--rolling', 'web', '--json'], { timeoutMs: 300_000 });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stderr, /^web01: drained on lb02 and lb01/m);
      assert.match(r.stderr, /^web01: UP in both proxies and back in rotation$/m);
      const restarts = (JSON.parse(r.stdout) as { results: { host: string; task: string; type: string; status: string }[] }).results.filter(
        (x) => x.type === 'handler' && x.task === 'restart apache2' && x.status === 'changed',
      );
      assert.deepEqual(restarts.map((x) => x.host).sort(), webs().sort(), 'Apache restarted on every web node');
      const load = await loading;
      assert.equal(load.failed, 0, `with --rolling: ${JSON.stringify(load.failures)}`);

      // the same kind of change without --rolling: every node restarts at once
      withWorkers(100);
      const loading2 = loadThroughVip(L(), 120, 30_000);
      await new Promise((r) => setTimeout(r, 2000));
      const plain = await apply(L(), inv);
      assert.equal(plain.code, 0, notOk(plain));
      const load2 = await loading2;
      console.log(
        `# ${engine}: an Apache restart on every web node without --rolling: ${load2.failed} of ${load2.total} requests failed (${[...new Set(load2.failures.map((f) => f.error ?? f.status))].join(', ') || 'none'})`,
      );
      assert.ok(load2.total > 1000);
      withWorkers('auto');
      const back = await L().exec([process.execPath, HASETUP, 'apply', inv, '--rolling', 'web'], { timeoutMs: 300_000 });
      assert.equal(back.code, 0, back.stdout + back.stderr);
    },
  );

  test(
    `[${engine}] draining the last web node that serves is refused; a drain interrupted while it waits leaves the node drained`,
    { timeout: 10 * 60_000 },
    async (t) => {
      if (!prerequisites(t, skip)) return;
      const all = webs();
      for (const w of all.slice(0, -1)) assert.equal((await hasetup(['drain', inv, w, '--wait', '10'])).code, 0, `drain ${w}`);
      const last = all[all.length - 1];
      const refused = await hasetup(['drain', inv, last]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, new RegExp(`${last} is the last web node that serves on both LBs: .*--force`));
      assert.deepEqual(await statesOf(inv, last), ['UP', 'UP']);
      for (const w of all.slice(0, -1)) assert.equal((await hasetup(['undrain', inv, w])).code, 0, `undrain ${w}`);

      // a session that lasts on every node: a big file fetched slowly through the VIP
      for (const w of all) await sh(L(), w, 'head -c 20000000 /dev/zero > /var/www/hasetup/current/hasetup-e2e-big.bin');
      const slow = [...all, ...all].map(() =>
        spawn(
          'nsenter',
          [
            `--net=${netnsPath(ctlNs(L().config))}`,
            '--',
            'curl',
            '-s',
            '-o',
            '/dev/null',
            '--limit-rate',
            '100k',
            `http://${VIP_ADDRESS}/hasetup-e2e-big.bin`,
          ],
          { stdio: 'ignore' },
        ),
      );
      try {
        // round robin spreads them; web01 must hold one before the drain begins
        let held = 0;
        for (let i = 0; i < 40 && held === 0; i++) {
          await new Promise((r) => setTimeout(r, 250));
          held = (await sessionsOf(inv, 'web01')).reduce((a, b) => a + b, 0);
        }
        assert.ok(held > 0, 'a slow download through the VIP holds a session on web01');
        const child = spawn(
          'nsenter',
          [`--net=${netnsPath(ctlNs(L().config))}`, '--', process.execPath, HASETUP, 'drain', inv, 'web01', '--wait', '120'],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let out = '';
        let err = '';
        child.stdout.on('data', (b) => (out += b));
        child.stderr.on('data', (b) => (err += b));
        const waiting = new Promise<void>((res) => child.stdout.on('data', () => /DRAIN on/.test(out) && res()));
        const exited = new Promise<number | null>((res) => child.on('close', (c) => res(c)));
        await Promise.race([waiting, exited]);
        await new Promise((r) => setTimeout(r, 2000));
        child.kill('SIGINT');
        const code = await exited;
        assert.equal(code, 130, out + err);
        assert.match(err, /interrupted: web01 stays drained on both LBs \(`hasetup undrain .* web01` puts it back\)/);
        assert.deepEqual(await statesOf(inv, 'web01'), ['DRAIN', 'DRAIN']);
      } finally {
        for (const p of slow) p.kill();
        for (const w of all) await sh(L(), w, 'rm -f /var/www/hasetup/current/hasetup-e2e-big.bin');
      }
      const u = await hasetup(['undrain', inv, 'web01']);
      assert.equal(u.code, 0, u.stdout + u.stderr);
      assert.deepEqual(await statesOf(inv, 'web01'), ['UP', 'UP']);
    },
  );
}
