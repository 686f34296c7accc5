// Benchmark: the application on the web tier, in the lab. (1) The demo page (PHP: a session, a few
// rows read and one written on the primary) through the VIP at a fixed, moderate open-loop rate, both
// engines in the same run, alternated (bundled, haproxy, bundled, haproxy with --runs 2): served req/s
// and p50/p90/p99/max latency counted from each request's due moment (an HDR histogram), errors, and
// the p99 of bundled over haproxy's. (2) With the bundled engine, the user's site (roles.app.source, a
// small folder beside a copy of the inventory): a one-file change deployed to both web nodes with
// `hasetup deploy --json` (wall time, the deploy's own time, files sent per node), then a deploy with
// nothing changed, --deploy-runs times each.
//
//   node --import tsx bench/app/run.ts [--runs 2] [--rate 100] [--seconds 20] [--warmup 3] [--deploy-runs 3]
//     (root; writes bench/results/app.md)
//
// It brings up a lab of its own (HASETUP_LAB_NAME=abench, the default host limits) and takes it down at
// the end, also on an error. The load runs in the lab's controller namespace: this file again, with
// --load URL (it prints its figures as one line of JSON).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { TestLab, REPO, type Run } from '../../harness/lab-cli.ts';
import { VIP } from '../../cli/lab/config.ts';
import { openLoop, type Outcome } from '../../cli/failover/openloop.ts';
import type { DeployResult } from '../../cli/deploy/run.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '2' },
    rate: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    'deploy-runs': { type: 'string', default: '3' },
    load: { type: 'string' },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);
const runs = Number(values.runs);
const deployRuns = Number(values['deploy-runs']);
for (const [k, v, max] of [
  ['rate', rate, 2000],
  ['seconds', seconds, 300],
  ['warmup', warmup, 60],
  ['runs', runs, 5],
  ['deploy-runs', deployRuns, 10],
] as const)
  if (!Number.isFinite(v) || v < (k === 'warmup' ? 0 : 1) || v > max) throw new Error(`--${k}: ${v} is not a number from 1 to ${max}`);

/** What one load window measured (the warm-up left out). */
interface LoadRun {
  requests: number;
  ok: number;
  /** Answers (2xx-4xx) that ended within the window, per second. */
  served: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  errors: Partial<Record<Outcome, number>>;
  nodes: Record<string, number>;
}

/** In the controller namespace: the open-loop load on `url`, warm-up then the measured window; its figures on stdout. */
async function loadMode(url: string): Promise<void> {
  const warmMs = warmup * 1000;
  const start = performance.now();
  const shots = await openLoop({
    url,
    rateAt: () => rate,
    durationMs: warmMs + seconds * 1000,
    timeoutMs: 10_000,
    maxConnections: 64,
    now: () => performance.now(),
  });
  const from = start + warmMs;
  const to = from + seconds * 1000;
  const window = shots.filter((s) => s.due >= from);
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
  const errors: LoadRun['errors'] = {};
  const nodes: Record<string, number> = {};
  for (const s of window) {
    if (s.outcome !== 'ok') {
      errors[s.outcome] = (errors[s.outcome] ?? 0) + 1;
      continue;
    }
    h.recordValue(Math.max(1, Math.round((s.end - s.due) * 1000)));
    nodes[s.node ?? '?'] = (nodes[s.node ?? '?'] ?? 0) + 1;
  }
  const ended = shots.filter((s) => s.outcome === 'ok' && s.end >= from && s.end < to).length;
  const ms = (us: number) => Math.round(us) / 1000;
  const r: LoadRun = {
    requests: window.length,
    ok: h.totalCount,
    served: Math.round((ended / seconds) * 10) / 10,
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    max: ms(h.maxValue),
    errors,
    nodes,
  };
  h.destroy();
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

if (values.load) {
  await loadMode(values.load);
  process.exit(0);
}

const VIP_ADDRESS = VIP.split('/')[0];
const lab = new TestLab('abench');
const engines = ['bundled', 'haproxy'] as const;
type Engine = (typeof engines)[number];
const hasetupJs = join(REPO, 'bin/hasetup.js');
const notOk = (what: string, r: Run) => new Error(`${what} failed (exit ${r.code}): ${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);

/** Until exactly one LB holds the VIP and the demo page answers 200 through it (at most 60 s). */
async function ready(): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const [a, b] = await Promise.all(['lb01', 'lb02'].map((h) => lab.ssh(h, 'ip -o addr show')));
    const held = a.stdout.includes(` ${VIP_ADDRESS}/`) !== b.stdout.includes(` ${VIP_ADDRESS}/`);
    const page = held
      ? await lab.exec(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `http://${VIP_ADDRESS}/`])
      : null;
    if (page?.stdout.trim() === '200') return;
    if (Date.now() > deadline) throw new Error(`the VIP is not on one LB alone or the demo page does not answer 200 after 60 s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function apply(inv: string): Promise<number> {
  process.stdout.write(`apply ${inv.split('/').pop()}\n`);
  const a = await lab.apply(['--json'], inv);
  if (a.code !== 0) throw notOk(`apply ${inv}`, a);
  await ready();
  return a.ms;
}

interface Deployed {
  /** Wall time of `hasetup lab exec -- hasetup deploy INVENTORY --json` (ms). */
  wall: number;
  result: DeployResult;
}

async function deploy(inv: string): Promise<Deployed> {
  const r = await lab.exec([process.execPath, hasetupJs, 'deploy', inv, '--json']);
  if (r.code !== 0) throw notOk(`deploy ${inv}`, r);
  return { wall: r.ms, result: JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as DeployResult };
}

/** The small site: an entry page (PHP) including a library, a stylesheet and a few static pages. */
function writeSite(dir: string, mark: string): number {
  mkdirSync(dir, { recursive: true });
  const files: Record<string, string> = {
    'index.php': `<?php\nrequire __DIR__ . '/lib.php';\nheader('Cache-Control: no-store');\necho page('release ${mark}', gethostname());\n`,
    'lib.php': `<?php\nfunction page(string $title, string $node): string {\n  return "<!doctype html><title>$title</title><link rel=stylesheet href=style.css><h1>$title</h1><p>served by $node</p>\\n";\n}\n`,
    'style.css': 'body { font-family: sans-serif; max-width: 40em; margin: 2em auto; }\n',
  };
  for (let i = 1; i <= 10; i++)
    files[`pages/page-${i}.html`] = `<!doctype html><title>page ${i}</title><p>${'static text '.repeat(50)}</p>\n`;
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    writeFileSync(join(dir, f), text);
  }
  return Object.keys(files).length;
}

const loads: { run: number; engine: Engine; load: LoadRun; applyMs: number; loadavg: string }[] = [];
const oneFile: Deployed[] = [];
const noChange: Deployed[] = [];
let first: Deployed | undefined;
const limits: string[] = [];
const siteFiles: number[] = [];
const started = Date.now();

try {
  const up = await lab.hasetup(['lab', 'up', '--inventory', lab.inventory]);
  if (up.code !== 0) throw notOk('lab up', up);
  limits.push(
    ...(up.stdout + up.stderr)
      .split('\n')
      .map((l) => /(\w+ hosts limited to .*)$/.exec(l)?.[1])
      .filter((l): l is string => !!l),
  );
  const invs = { bundled: await lab.inventoryFor('bundled'), haproxy: await lab.inventoryFor('haproxy') };
  let current: Engine | null = null;
  for (let run = 1; run <= runs; run++)
    for (const engine of engines) {
      const applyMs = await apply(invs[engine]);
      current = engine;
      const avg = loadavg()
        .map((x) => x.toFixed(1))
        .join(' ');
      const r = await lab.exec([
        process.execPath,
        '--import',
        'tsx',
        join(REPO, 'bench/app/run.ts'),
        ...process.argv.slice(2),
        '--load',
        `http://${VIP_ADDRESS}/`,
      ]);
      if (r.code !== 0) throw notOk(`the load (${engine})`, r);
      const load = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as LoadRun;
      loads.push({ run, engine, load, applyMs, loadavg: avg });
      process.stdout.write(`run ${run} ${engine}: ${JSON.stringify(load)}\n`);
    }

  // the user's site, deployed with the bundled engine
  if (current !== 'bundled') await apply(invs.bundled);
  const siteInv = invs.bundled.replace(/\.yaml$/, '-site.yaml');
  const text = readFileSync(invs.bundled, 'utf8');
  const withSite = text.replace(/^roles:\n/m, 'roles:\n  app:\n    source: ./site\n');
  if (withSite === text) throw new Error(`no roles: section in ${invs.bundled} to put roles.app.source in`);
  writeFileSync(siteInv, withSite);
  copyFileSync(invs.bundled.replace(/\.yaml$/, '.secrets.yaml'), siteInv.replace(/\.yaml$/, '.secrets.yaml'));
  const site = join(lab.dir, 'site');
  siteFiles.push(writeSite(site, 'r0'));
  first = await deploy(siteInv);
  for (let i = 1; i <= deployRuns; i++) {
    writeSite(site, `r${i}`);
    const d = await deploy(siteInv);
    const bad = d.result.nodes.filter((n) => n.status !== 'deployed' || n.sent !== 1);
    if (bad.length) throw new Error(`one-file deploy ${i}: ${JSON.stringify(d.result.nodes)}`);
    oneFile.push(d);
    const same = await deploy(siteInv);
    if (same.result.nodes.some((n) => n.status !== 'unchanged' || n.sent !== 0))
      throw new Error(`no-change deploy ${i}: ${JSON.stringify(same.result.nodes)}`);
    noChange.push(same);
    process.stdout.write(`deploy ${i}: one file ${d.wall} ms (${d.result.ms} ms), no change ${same.wall} ms (${same.result.ms} ms)\n`);
  }
} finally {
  await lab.down();
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (x: number) => (x >= 100 ? String(Math.round(x)) : x.toFixed(1));
const spread = (xs: number[]) => `${fmt(median(xs))} (${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))})`;
const errText = (e: LoadRun['errors']) =>
  Object.keys(e).length
    ? Object.entries(e)
        .map(([k, n]) => `${n} ${k}`)
        .join(', ')
    : '0';
const errCount = (e: LoadRun['errors']) => Object.values(e).reduce((a, b) => a + (b ?? 0), 0);
const ratios = Array.from({ length: runs }, (_, i) => {
  const b = loads.find((l) => l.run === i + 1 && l.engine === 'bundled')!.load;
  const h = loads.find((l) => l.run === i + 1 && l.engine === 'haproxy')!.load;
  return b.p99 / h.p99;
});
const of = (e: Engine) => loads.filter((l) => l.engine === e).map((l) => l.load);
const nodeRows = (ds: Deployed[]) =>
  [...new Set(ds.flatMap((d) => d.result.nodes.map((n) => n.host)))]
    .map((h) => {
      const ns = ds.map((d) => d.result.nodes.find((n) => n.host === h)!);
      const sent = `${h}: ${ns.map((n) => n.sent).join('/')} sent`;
      return ns.every((n) => n.status === 'unchanged') ? `${sent}, left alone` : `${sent}, ${spread(ns.map((n) => n.ms))} ms`;
    })
    .join('; ');
const deployRow = (label: string, ds: Deployed[]) =>
  `| ${label} | ${spread(ds.map((d) => d.wall))} | ${spread(ds.map((d) => d.result.ms))} | ${nodeRows(ds)} |`;
const cmd = `node --import tsx bench/app/run.ts --runs ${runs} --rate ${rate} --seconds ${seconds} --warmup ${warmup} --deploy-runs ${deployRuns}`;
const p99b = median(of('bundled').map((l) => l.p99));
const p99h = median(of('haproxy').map((l) => l.p99));
const failedAll = loads.reduce((a, l) => a + errCount(l.load.errors), 0);
const ratio = median(ratios);
const servedOf = (e: Engine) =>
  of(e)
    .map((l) => l.served)
    .join(', ');
const allServed = loads.every((l) => l.load.served >= rate * 0.95);
const verdict =
  ratio > 1.2
    ? 'the bundled proxy adds latency in the tail at this rate'
    : ratio < 0.83
      ? 'the bundled proxy is the faster in the tail at this rate'
      : 'no difference between the engines beyond the noise of this machine';

const md = `# Application benchmark: the demo page through the VIP, and deploys of the user's site

- machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim()}; the five lab hosts are systemd-nspawn containers on it and the load generator runs on the same machine, which is shared and noisy (load average at the start of each load is in the table): compare the engines within this run, not with another machine's
- the lab's host limits (as \`hasetup lab up\` printed them): ${limits.join('; ') || '(not printed)'}
- date: ${new Date().toISOString()}; the whole run took ${Math.round((Date.now() - started) / 1000)} s
- command: \`${cmd}\` (as root)
- load: the demo page (\`http://${VIP_ADDRESS}/\`: PHP, a session, rows read and one written on the primary) through the VIP from the lab's controller namespace, open loop at **${rate} req/s** for ${seconds} s after ${warmup} s of warm-up at the same rate, keep-alive connections (at most 64), no cookie (each request a new session); latency from each request's due moment, an HDR histogram of the answered requests; errors are resets, timeouts (10 s) and 5xx. Engines alternate: ${Array.from({ length: runs }, () => engines.join(', ')).join(', ')}, each after \`hasetup apply\` of that engine

## The demo page at ${rate} req/s

| run | engine | served req/s | p50 ms | p90 ms | p99 ms | max ms | errors | answered by | apply before (s) | load average |
| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | --- |
${loads
  .map(
    (l) =>
      `| ${l.run} | ${l.engine} | ${l.load.served} | ${fmt(l.load.p50)} | ${fmt(l.load.p90)} | ${fmt(l.load.p99)} | ${fmt(l.load.max)} | ${errText(l.load.errors)} of ${l.load.requests} | ${Object.entries(
        l.load.nodes,
      )
        .sort()
        .map(([n, c]) => `${n} ${c}`)
        .join(', ')} | ${(l.applyMs / 1000).toFixed(1)} | ${l.loadavg} |`,
  )
  .join('\n')}

p99 bundled / haproxy in the same run: ${ratios.map((r, i) => `run ${i + 1} **${r.toFixed(2)}**`).join(', ')}.

## Deploying the user's site (bundled engine, two web nodes)

The site: ${siteFiles[0]} files (an entry page in PHP, its library, a stylesheet, ten static pages), \`roles.app.source: ./site\` in a copy of the lab's inventory. The first deploy (every file) took ${first ? `${fmt(first.wall)} ms wall, ${fmt(first.result.ms)} ms in the deploy (${first.result.nodes.map((n) => `${n.host} ${n.sent} sent`).join(', ')})` : '-'}. Then ${deployRuns} times: the entry page changed and deployed, then a deploy with nothing changed. Median (range) in ms; wall: \`hasetup lab exec -- hasetup deploy INVENTORY --json\` as a whole (two Node.js starts, the SSH connections); deploy: its own \`ms\`.

| deploy | wall ms | deploy ms | per node: files sent (each run), time |
| --- | ---: | ---: | --- |
${deployRow('one file changed', oneFile)}
${deployRow('nothing changed', noChange)}

## What the numbers say

At ${rate} req/s, a moderate rate for two web nodes of the lab's size, ${allServed ? 'both engines served what was asked' : 'the cluster did not serve all that was asked'} (${servedOf('bundled')} req/s bundled, ${servedOf('haproxy')} haproxy) with ${failedAll} failed request${failedAll === 1 ? '' : 's'} in all; the median p99 was ${fmt(p99b)} ms on the bundled proxy and ${fmt(p99h)} ms on HAProxy (bundled/haproxy ${ratio.toFixed(2)}), ${verdict}. A one-file deploy to both nodes took ${(median(oneFile.map((d) => d.result.ms)) / 1000).toFixed(1)} s (one node after the other: out of rotation on both LBs, the switch, PHP-FPM's reload, the entry page checked, back in rotation once both proxies see it UP), sending one file per node; a deploy with nothing changed took ${fmt(median(noChange.map((d) => d.result.ms)))} ms and touched no node.
`;
mkdirSync(join(REPO, 'bench/results'), { recursive: true });
writeFileSync(join(REPO, 'bench/results/app.md'), md);
process.stdout.write(md);
