// `hasetup deploy` (and the deploy step of `apply`): the site (roles.app.source, or the demo
// application) to every web node as a release, one node at a time. A node whose `current` already
// serves exactly the site's files is left alone. Otherwise, when it serves and another node does
// too, it is put in MAINT on both LBs (the backup first; MAINT rather than DRAIN: with cookie
// persistence a drained node still gets its sticky users' requests, see README), and once neither LB
// has a request on it: the new release staged (only the files whose checksum differs travel), the
// `current` link switched in one rename, PHP-FPM reloaded (opcache and the realpath cache start
// empty, so every request from then on runs the new release), and the node's entry page asked on its
// own loopback. It answers: health checks resume, and once both proxies see it UP it is back in
// rotation; the oldest releases beyond roles.app.keep_releases are removed. It does not (a PHP
// syntax error answers 500): `current` goes back to the old release on that node, which goes back in
// rotation serving it, and the deploy stops there, every other node untouched. `--rollback` is the
// same walk to the release before the current one.
import type { Host, Inventory } from '../../inventory/types.ts';
import type { Cluster } from '../cluster.ts';
import { lbOrder, othersServing, sessionsOf, setState, views, waitViews } from '../drain/runtime-api.ts';
import { FPM_UNIT, RELEASES_DIR, siteSource } from '../../roles/index.ts';
import { shq } from '../engine/shell.ts';
import { difference, readManifest, type Manifest } from './manifest.ts';
import { checkScript, parseProbe, probeScript, pruneScript, releaseName, stageScript, switchScript, type NodeState } from './node.ts';
import { tar } from './tar.ts';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface DeployOptions {
  inv: Inventory;
  cluster: Cluster;
  /** The web nodes to deploy to, in order (default: every web node). */
  nodes?: Host[];
  rollback?: boolean;
  /** Say what would change, change nothing. */
  check?: boolean;
  say(msg: string): void;
  signal?: AbortSignal;
  /** How long a node may take to have no request left on either LB (s). */
  drainWaitSec?: number;
  /** How long its entry page may take to answer after the switch (s). */
  checkSec?: number;
}

export type NodeStatus = 'unchanged' | 'deployed' | 'rolled back' | 'would deploy' | 'would roll back' | 'failed' | 'not reached';

export interface NodeOutcome {
  host: string;
  status: NodeStatus;
  /** The release it served before, and after. */
  from: string | null;
  to: string | null;
  /** Files sent (their checksum differed), and bytes; files removed from the release. */
  sent: number;
  bytes: number;
  removed: number;
  /** Taken out of rotation for the switch (MAINT on both LBs). */
  drained: boolean;
  ms: number;
  message?: string;
}

export interface DeployResult {
  ok: boolean;
  /** The site's content hash (deploy), or null (rollback). */
  hash: string | null;
  files: number;
  nodes: NodeOutcome[];
  ms: number;
}

/** The PHP pool's error log (roles/app), whose end a failed check shows. */
const PHP_ERROR_LOG = `/var/log/${FPM_UNIT}-hasetup.error.log`;

export async function deploy(o: DeployOptions): Promise<DeployResult> {
  const t0 = Date.now();
  const nodes = o.nodes ?? o.cluster.hosts('web');
  const site = o.rollback ? null : await readManifest(siteSource(o.inv));
  const states = await Promise.all(nodes.map(async (h) => parseProbe(await o.cluster.sh(h.name, probeScript()))));
  const outcomes: NodeOutcome[] = nodes.map((h, i) => ({
    host: h.name,
    status: 'not reached',
    from: states[i].current,
    to: null,
    sent: 0,
    bytes: 0,
    removed: 0,
    drained: false,
    ms: 0,
  }));
  const result = (): DeployResult => ({
    ok: outcomes.every((n) => n.status !== 'failed' && n.status !== 'not reached'),
    hash: site?.hash ?? null,
    files: site?.files.length ?? 0,
    nodes: outcomes,
    ms: Date.now() - t0,
  });

  // a rollback needs an older release on every node: refused before anything changes
  if (o.rollback) {
    const none = nodes.filter((_, i) => previous(states[i]) === null);
    if (none.length)
      throw new DeployError(
        `no release to roll back to on ${none.map((h) => h.name).join(', ')} (${none.map((h) => describe(states[nodes.indexOf(h)])).join('; ')})`,
      );
  }

  // one name for the release on every node of this deploy
  const name = site ? releaseName(site.hash, new Date()) : '';
  let lbs: Host[] | null = null;
  for (let i = 0; i < nodes.length; i++) {
    if (o.signal?.aborted) break;
    const h = nodes[i];
    const st = states[i];
    const out = outcomes[i];
    const t1 = Date.now();
    const plan = planNode(st, site, o.rollback ?? false);
    if (plan.kind === 'unchanged') {
      out.status = 'unchanged';
      out.to = st.current;
      o.say(`${h.name}: release ${st.current} already serves the site (${site?.files.length} files): nothing to do`);
      continue;
    }
    if (o.check) {
      out.status = o.rollback ? 'would roll back' : 'would deploy';
      out.to = plan.kind === 'rollback' ? plan.target : '(new release)';
      out.sent = plan.kind === 'deploy' ? plan.send.length : 0;
      out.removed = plan.kind === 'deploy' ? plan.remove.length : 0;
      o.say(
        plan.kind === 'rollback'
          ? `${h.name}: would roll back from ${st.current} to ${plan.target}`
          : `${h.name}: would deploy a new release: ${plan.send.length} file(s) to send, ${plan.remove.length} to remove (${st.current ? `from ${st.current}` : 'first release'})`,
      );
      continue;
    }
    // out of rotation, unless it serves no release yet or it is the only node that serves
    let drained = false;
    if (st.current) {
      lbs ??= await lbOrder(o.cluster, o.inv);
      const before = await views(o.cluster, lbs);
      const serving = [...before.values()].every((l) => l.find((s) => s.server === h.name)?.status === 'UP');
      if (serving && othersServing(before, h.name).length > 0) {
        await setState(o.cluster, lbs, h.name, 'maint');
        drained = true;
        const idle = await waitViews(o.cluster, lbs, o.drainWaitSec ?? 30, (v) =>
          Object.values(sessionsOf(v, h.name)).every((n) => n === 0),
        );
        o.say(
          `${h.name}: out of rotation on ${lbs.map((l) => l.name).join(' and ')}${idle.ok ? `, no request left (${(idle.ms / 1000).toFixed(1)} s)` : `, requests still open after ${o.drainWaitSec ?? 30} s`}`,
        );
      } else if (serving) o.say(`${h.name}: the only web node that serves: switched without taking it out of rotation`);
      else
        o.say(
          `${h.name}: not in rotation (${[...before].map(([lb, l]) => `${lb}: ${l.find((s) => s.server === h.name)?.status ?? 'absent'}`).join(', ')}): left as it is`,
        );
    }
    out.drained = drained;

    let target: string;
    if (plan.kind === 'deploy') {
      target = name;
      const entries = await Promise.all(plan.send.map(async (f) => ({ path: f.path, content: await readFile(join(site!.root, f.path)) })));
      const archive = tar(entries);
      await o.cluster.sh(
        h.name,
        stageScript(target, st.current && st.releases.includes(st.current) ? st.current : null, site!, plan.send, plan.remove),
        archive,
      );
      out.sent = plan.send.length;
      out.bytes = entries.reduce((n, e) => n + e.content.length, 0);
      out.removed = plan.remove.length;
    } else target = plan.target;

    await o.cluster.sh(h.name, switchScript(target, st.php));
    const check = await o.cluster.exec(h.name, checkScript(o.checkSec ?? 15, PHP_ERROR_LOG));
    if (check.code !== 0) {
      const why = `its entry page answered ${check.stdout.trim() || 'nothing'}${check.stderr.trim() ? ` (${check.stderr.trim().split('\n').pop()})` : ''}`;
      // back to what it served, on this node only; the deploy stops here
      if (st.current) {
        await o.cluster.sh(h.name, switchScript(st.current, st.php));
        const again = await o.cluster.exec(h.name, checkScript(o.checkSec ?? 15, PHP_ERROR_LOG));
        if (plan.kind === 'deploy') await o.cluster.sh(h.name, `rm -rf -- ${shq(`${RELEASES_DIR}/${target}`)}`);
        if (again.code === 0 && drained && lbs) await backInRotation(o, lbs, h);
        else if (drained) o.say(`${h.name}: its old release ${st.current} does not answer either: it stays out of rotation`);
      }
      out.status = 'failed';
      out.to = st.current;
      out.ms = Date.now() - t1;
      out.message = `${target} failed on ${h.name}: ${why}; ${st.current ? `${h.name} serves ${st.current} again` : 'no release to go back to'}`;
      o.say(
        `${h.name}: ${out.message}; the deploy stops here (${
          nodes
            .slice(i + 1)
            .map((n) => n.name)
            .join(', ') || 'no other node'
        } untouched)`,
      );
      return result();
    }
    o.say(
      `${h.name}: ${target} answers (${check.stdout.trim()})${plan.kind === 'deploy' ? `: ${out.sent} file(s) sent (${out.bytes} bytes), ${out.removed} removed` : ''}`,
    );
    if (drained && lbs) await backInRotation(o, lbs, h);
    if (plan.kind === 'deploy') {
      const p = pruneScript({ releases: [...new Set([...st.releases, target])].sort() }, target, o.inv.roles.app.keepReleases);
      if (p.removed.length) await o.cluster.sh(h.name, p.script);
    }
    out.status = plan.kind === 'deploy' ? 'deployed' : 'rolled back';
    out.to = target;
    out.ms = Date.now() - t1;
  }
  return result();
}

/** Health checks resume (DRAIN), the node UP again in both proxies, then READY. */
async function backInRotation(o: DeployOptions, lbs: Host[], h: Host): Promise<void> {
  await setState(o.cluster, lbs, h.name, 'drain');
  const up = await waitViews(o.cluster, lbs, 60, (v) =>
    [...v.values()].every((l) => l.find((s) => s.server === h.name)?.status === 'DRAIN'),
  );
  if (!up.ok)
    throw new DeployError(
      `${h.name} is not UP again in both proxies after 60 s: it stays out of rotation (\`hasetup undrain\` once it is fixed)`,
    );
  await setState(o.cluster, lbs, h.name, 'ready');
  o.say(`${h.name}: UP in both proxies and back in rotation`);
}

type NodePlan =
  { kind: 'unchanged' } | { kind: 'deploy'; send: Manifest['files']; remove: string[] } | { kind: 'rollback'; target: string };

function planNode(st: NodeState, site: Manifest | null, rollback: boolean): NodePlan {
  if (rollback) return { kind: 'rollback', target: previous(st)! };
  const d = difference(site!, st.current ? st.files : new Map());
  if (st.current && d.send.length === 0 && d.remove.length === 0) return { kind: 'unchanged' };
  return { kind: 'deploy', ...d };
}

/** The release before the current one (by name, which is by time), or null. */
export function previous(st: NodeState): string | null {
  if (!st.current) return null;
  const older = st.releases.filter((r) => r < st.current!);
  return older.length ? older[older.length - 1] : null;
}

const describe = (st: NodeState): string =>
  st.current ? `current ${st.current}, ${st.releases.length} release(s) kept` : 'no release deployed yet';

export class DeployError extends Error {}
