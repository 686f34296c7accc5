// End-to-end in the lab, both engines: the application on the web tier. The demo page through the VIP
// is PHP with rows from MariaDB; a client with a cookie jar stays on one node (its PHP session counts
// 1..20) while clients without one are balanced; that node in maintenance, the jar's next request goes
// to the other node without an error (a new session there: sessions are files on each node). The
// user's own site (roles.app.source) deployed with one file changed under a bounded load through the
// VIP: no failed request, each answer wholly from the old or the new release, only the changed file
// sent; `deploy --rollback` the same way back; a deploy with nothing changed changes nothing; a
// release whose entry page has a PHP syntax error stops at the first node, which serves the old
// release again, with no failed request. A second apply changes nothing and `--check --diff` never
// shows a secret.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { labForFile, labUnavailable } from '../../helpers/lab.ts';
import { commandUnavailable, prerequisites } from '../../helpers/env.ts';
import { apply, appliedCluster, HASETUP, loadThroughVip, notOk, VIP_ADDRESS, type EngineName } from '../../helpers/lb-lab.ts';

const skip = labUnavailable() ?? commandUnavailable('curl');
const L = labForFile(skip);
const hasetup = (args: string[], timeoutMs = 300_000) => L().exec([process.execPath, HASETUP, ...args], { timeoutMs });

interface Page {
  status: number;
  node: string;
  count: number;
  body: string;
}

/** `n` requests to the VIP's entry page, one after the other, with a cookie jar (a file in the controller namespace) or without. */
async function pages(n: number, jar?: string): Promise<Page[]> {
  const cookies = jar ? `-b ${jar} -c ${jar}` : '';
  const r = await L().exec([
    'sh',
    '-c',
    `for i in $(seq ${n}); do curl -sS --max-time 10 ${cookies} -w '\\n@@%{http_code}@@\\n' http://${VIP_ADDRESS}/ || echo '@@000@@'; done`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split(/^@@(\d+)@@$/m).reduce<Page[]>((acc, part, i, all) => {
    if (i % 2 === 1) {
      const body = all[i - 1];
      acc.push({
        status: Number(part),
        node: /served by (web\d+)/.exec(body)?.[1] ?? '',
        count: Number(/id="count">(\d+)</.exec(body)?.[1] ?? 0),
        body,
      });
    }
    return acc;
  }, []);
}

/** The per-node outcome `deploy --json` prints. */
interface Deployed {
  ok: boolean;
  nodes: { host: string; status: string; from: string | null; to: string | null; sent: number; removed: number }[];
}
async function deploy(inv: string, args: string[] = []): Promise<Deployed & { code: number; out: string }> {
  const r = await hasetup(['deploy', inv, '--json', ...args], 600_000);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let parsed: Deployed;
  try {
    parsed = JSON.parse(last) as Deployed;
  } catch {
    throw new Error(`deploy printed no JSON (exit ${r.code}): ${r.stdout.slice(-2000)} ${r.stderr.slice(-3000)}`);
  }
  return { ...parsed, code: r.code, out: r.stderr };
}

/**
 * The user's site: an entry page that names its release mark and the release directory it runs from,
 * twice (its own directory and that of a file it includes), so that an answer mixing two releases shows.
 */
function writeSite(dir: string, mark: string, broken = false): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'index.php'),
    `<?php\nrequire __DIR__ . '/lib.php';\nheader('Cache-Control: no-store');\n${broken ? 'echo "unclosed;\n' : ''}echo 'site mark ${mark} dir ' . basename(__DIR__) . ' lib ' . lib_dir() . " served by " . gethostname() . "\\n";\n`,
  );
  writeFileSync(join(dir, 'lib.php'), `<?php\nfunction lib_dir(): string { return basename(__DIR__); }\n`);
  writeFileSync(join(dir, 'about.html'), '<p>a static page of the site</p>\n');
}

/** A copy of the engine's inventory whose roles.app.source is ./site-ENGINE beside it. */
function siteInventory(inv: string, engine: EngineName): { inv: string; site: string } {
  const file = inv.replace(/\.yaml$/, '-site.yaml');
  const site = join(dirname(inv), `site-${engine}`);
  const text = readFileSync(inv, 'utf8');
  const withSite = text.replace(/^roles:\n/m, `roles:\n  app:\n    source: ./site-${engine}\n`);
  assert.notEqual(withSite, text, 'roles.app.source written into the inventory');
  writeFileSync(file, withSite);
  copyFileSync(inv.replace(/\.yaml$/, '.secrets.yaml'), file.replace(/\.yaml$/, '.secrets.yaml'));
  return { inv: file, site };
}

interface Marked {
  at: number;
  node: string | null;
  status: number;
  error: string | null;
  mark?: string;
}
const MARK = 'site mark (\\S+ dir \\S+ lib \\S+)';

/** Checks every answer of a load: none failed, each wholly from one release (`dir` = `lib`), its mark the one of that release. */
function wholeReleases(samples: Marked[], markOf: Map<string, string>): Record<string, number> {
  const seen: Record<string, number> = {};
  for (const s of samples) {
    assert.ok(s.status === 200, `a request failed: ${JSON.stringify(s)}`);
    const [mark, , dir, , lib] = (s.mark ?? '').split(' ');
    assert.equal(dir, lib, `an answer mixes two releases: ${s.mark}`);
    const expected = markOf.get(dir);
    assert.ok(expected, `an answer from an unknown release ${dir}: ${s.mark}`);
    assert.equal(mark, expected, `release ${dir} answered with mark ${mark}`);
    seen[dir] = (seen[dir] ?? 0) + 1;
  }
  return seen;
}

for (const engine of ['bundled', 'haproxy'] as EngineName[]) {
  let inv = '';

  test(
    `[${engine}] the demo page is PHP with rows from MariaDB; a cookie jar sticks to one node, without one the nodes take turns; that node in maintenance, the jar moves`,
    { timeout: 15 * 60_000 },
    async (t) => {
      if (!prerequisites(t, skip)) return;
      inv = await appliedCluster(L(), engine);

      const jar = join(L().config.stateDir, `app-${engine}.jar`);
      rmSync(jar, { force: true });
      const sticky = await pages(20, jar);
      assert.equal(sticky.length, 20);
      for (const p of sticky) {
        assert.equal(p.status, 200, p.body);
        assert.match(p.body, /database \S+: <span id="views">\d+<\/span> page views/, 'the database answered');
        assert.match(p.body, /class="item">\d+ /, 'rows read');
      }
      const node = sticky[0].node;
      assert.deepEqual(
        sticky.map((p) => p.node),
        Array(20).fill(node),
        'one cookie jar, one node',
      );
      assert.deepEqual(
        sticky.map((p) => p.count),
        Array.from({ length: 20 }, (_, i) => i + 1),
        'the session counts every view',
      );
      assert.match(readFileSync(jar, 'utf8'), /\tSERVERID\t/, 'the LB set its persistence cookie');

      const loose = await pages(6);
      assert.deepEqual([...new Set(loose.map((p) => p.node))].sort(), ['web01', 'web02'], 'without a cookie the nodes take turns');
      for (const p of loose) assert.equal(p.count, 1, 'each request without a cookie starts a session');

      // in maintenance on both LBs: its sticky users go to the other node, with a new session there
      const other = node === 'web01' ? 'web02' : 'web01';
      const d = await hasetup(['drain', inv, node, '--maint', '--wait', '30']);
      assert.equal(d.code, 0, d.stdout + d.stderr);
      const moved = await pages(3, jar);
      assert.deepEqual(
        moved.map((p) => [p.status, p.node, p.count]),
        [
          [200, other, 1],
          [200, other, 2],
          [200, other, 3],
        ],
      );
      const u = await hasetup(['undrain', inv, node]);
      assert.equal(u.code, 0, u.stdout + u.stderr);
      // back in rotation: the jar's cookie now names the other node, and stays there
      const after = await pages(3, jar);
      assert.deepEqual(
        after.map((p) => p.node),
        [other, other, other],
      );
    },
  );

  test(
    `[${engine}] the user's site: a one-file change deployed under load, rolled back, a no-change deploy, a broken release stopped at the first node; no request fails`,
    { timeout: 20 * 60_000 },
    async (t) => {
      if (!prerequisites(t, skip)) return;
      assert.ok(inv, 'the first test applied the cluster');
      const { inv: siteInv, site } = siteInventory(inv, engine);
      rmSync(site, { recursive: true, force: true });
      writeSite(site, 'A');
      const first = await deploy(siteInv);
      assert.equal(first.code, 0, first.out);
      assert.deepEqual(
        first.nodes.map((n) => n.status),
        ['deployed', 'deployed'],
        first.out,
      );
      const relA = first.nodes[0].to!;
      assert.ok(first.nodes.every((n) => n.to === relA));
      const markOf = new Map([[relA, 'A']]);

      // one file changed, deployed while 60 req/s go through the VIP
      writeSite(site, 'B');
      const samplesFile = join(L().config.stateDir, `app-deploy-${engine}.json`);
      const loading = loadThroughVip(L(), 60, 40_000, 0, samplesFile, undefined, MARK);
      await new Promise((r) => setTimeout(r, 3000));
      const second = await deploy(siteInv);
      assert.equal(second.code, 0, second.out);
      const relB = second.nodes[0].to!;
      markOf.set(relB, 'B');
      for (const n of second.nodes) {
        assert.equal(n.status, 'deployed', second.out);
        assert.equal(n.sent, 1, `${n.host}: only the changed file travels`);
        assert.equal(n.from, relA);
        assert.equal(n.to, relB);
      }
      const load = await loading;
      assert.equal(load.failed, 0, JSON.stringify(load.failures));
      const seen = wholeReleases(JSON.parse(readFileSync(samplesFile, 'utf8')) as Marked[], markOf);
      assert.ok(seen[relA] > 0 && seen[relB] > 0, `both releases answered during the deploy: ${JSON.stringify(seen)}`);
      const now = await pages(4);
      for (const p of now) assert.match(p.body, new RegExp(`site mark B dir ${relB} lib ${relB}`), 'every node serves the new release');

      // a deploy with nothing changed changes nothing
      const same = await deploy(siteInv);
      assert.equal(same.code, 0, same.out);
      assert.deepEqual(
        same.nodes.map((n) => [n.status, n.sent]),
        [
          ['unchanged', 0],
          ['unchanged', 0],
        ],
        same.out,
      );

      // --rollback under load: back to release A, no failed request
      const rollFile = join(L().config.stateDir, `app-rollback-${engine}.json`);
      const loading2 = loadThroughVip(L(), 60, 30_000, 0, rollFile, undefined, MARK);
      await new Promise((r) => setTimeout(r, 2000));
      const back = await deploy(siteInv, ['--rollback']);
      assert.equal(back.code, 0, back.out);
      assert.deepEqual(
        back.nodes.map((n) => [n.status, n.to]),
        [
          ['rolled back', relA],
          ['rolled back', relA],
        ],
        back.out,
      );
      const load2 = await loading2;
      assert.equal(load2.failed, 0, JSON.stringify(load2.failures));
      wholeReleases(JSON.parse(readFileSync(rollFile, 'utf8')) as Marked[], markOf);

      // a release with a PHP syntax error in its entry page: stopped at the first node, which serves its old release again
      writeSite(site, 'C', true);
      const brokenFile = join(L().config.stateDir, `app-broken-${engine}.json`);
      const loading3 = loadThroughVip(L(), 60, 30_000, 0, brokenFile, undefined, MARK);
      await new Promise((r) => setTimeout(r, 2000));
      const broken = await deploy(siteInv);
      assert.notEqual(broken.code, 0, 'a broken release fails the deploy');
      assert.equal(broken.ok, false);
      assert.deepEqual(
        broken.nodes.map((n) => [n.status, n.to]),
        [
          ['failed', relA],
          ['not reached', null],
        ],
        `the deploy stopped at the first node, which serves ${relA} again: ${broken.out}`,
      );
      const load3 = await loading3;
      assert.equal(load3.failed, 0, JSON.stringify(load3.failures));
      const seen3 = wholeReleases(JSON.parse(readFileSync(brokenFile, 'utf8')) as Marked[], markOf);
      assert.deepEqual(Object.keys(seen3), [relA], 'only the old release answered');

      // back to the demo application for the next test (the lab's own inventory has no source)
      const demo = await deploy(inv);
      assert.equal(demo.code, 0, demo.out);
    },
  );

  test(`[${engine}] a second apply changes nothing, and --check --diff shows no secret`, { timeout: 10 * 60_000 }, async (t) => {
    if (!prerequisites(t, skip)) return;
    assert.ok(inv, 'the first test applied the cluster');
    const again = await apply(L(), inv);
    assert.equal(again.code, 0, notOk(again));
    for (const [h, r] of Object.entries(again.hosts)) assert.equal(r.changed, 0, `${h}: ${notOk(again)}`);
    const diff = await hasetup(['apply', inv, '--check', '--diff']);
    assert.equal(diff.code, 0, diff.stderr);
    const secrets = Object.values(parse(readFileSync(inv.replace(/\.yaml$/, '.secrets.yaml'), 'utf8')) as Record<string, unknown>).filter(
      (v): v is string => typeof v === 'string' && v.length >= 6,
    );
    assert.ok(secrets.length > 0);
    for (const s of secrets) assert.ok(!(diff.stdout + diff.stderr).includes(s), 'a secret in the output of --check --diff');
  });
}
