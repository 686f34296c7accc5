// `hasetup apply --rolling web`: the web nodes one at a time, each drained on both LBs (the backup
// first) before its changes and put back once both proxies see it UP again, so that a change that
// restarts Apache loses no request; then every other host, as a plain apply. A node that was
// already drained (hasetup drain) or down stays as it was.
import type { Host, Inventory } from '../inventory/types.ts';
import type { Cluster } from './cluster.ts';
import { lbOrder, othersServing, sessionsOf, setState, views, waitViews } from './drain/runtime-api.ts';
import type { Reporter, RunOptions, RunResult } from './engine/runner.ts';

export interface RollingOptions extends Omit<RunOptions, 'reporter' | 'limit'> {
  hosts: Host[];
  cluster: Cluster;
  /** The reporter of one step (a web node, or the rest); `end` is called once, with all of them. */
  reporter: Reporter;
  run(o: RunOptions): Promise<RunResult>;
  say(msg: string): void;
}

/** A reporter that forwards everything but the end of a run. */
const stepOf = (r: Reporter): Reporter => ({
  ...r,
  start: r.start.bind(r),
  unreachable: r.unreachable.bind(r),
  roleStart: r.roleStart.bind(r),
  result: r.result.bind(r),
  roleEnd: r.roleEnd.bind(r),
  end: () => {},
});

function merge(all: RunResult[], check: boolean): RunResult {
  return {
    hosts: Object.assign({}, ...all.map((r) => r.hosts)),
    results: all.flatMap((r) => r.results),
    roundTrips: Object.assign({}, ...all.map((r) => r.roundTrips)),
    check,
    interrupted: all.some((r) => r.interrupted),
    facts: Object.assign({}, ...all.map((r) => r.facts)),
  };
}

export async function rollingApply(o: RollingOptions, inv: Inventory): Promise<RunResult> {
  const results: RunResult[] = [];
  const step = stepOf(o.reporter);
  const webs = o.hosts.filter((h) => h.group === 'web');
  const rest = o.hosts.filter((h) => h.group !== 'web');
  const lbs = await lbOrder(o.cluster, inv);
  let stopped = false;
  for (const w of webs) {
    if (o.signal?.aborted) break;
    const before = await views(o.cluster, lbs);
    // only a node that serves is drained (a new node, one down, or one drained by hand: left as it is)
    const serving = [...before.values()].every((l) => l.find((s) => s.server === w.name)?.status === 'UP');
    const drain = serving && othersServing(before, w.name).length > 0 && !o.check;
    if (serving && !drain && !o.check) o.say(`${w.name}: the only web node that serves: applied without draining it`);
    if (drain) {
      await setState(o.cluster, lbs, w.name, 'drain');
      const idle = await waitViews(o.cluster, lbs, 30, (v) => Object.values(sessionsOf(v, w.name)).every((n) => n === 0));
      o.say(
        `${w.name}: drained on ${lbs.map((l) => l.name).join(' and ')}${idle.ok ? `, no session left (${(idle.ms / 1000).toFixed(1)} s)` : ', sessions still open after 30 s'}`,
      );
    }
    const r = await o.run({ ...o, reporter: step, limit: [w.name] });
    results.push(r);
    const failed = Object.values(r.hosts).some((h) => h.failed > 0 || h.unreachable > 0) || r.interrupted;
    if (drain) {
      if (failed) {
        o.say(`${w.name}: its apply failed: it stays drained on both LBs (\`hasetup undrain\` once it is fixed)`);
        stopped = true;
        break;
      }
      // UP and still drained: the proxies show DRAIN (a node whose checks are rising shows DOWN or DRAIN n/m)
      const up = await waitViews(o.cluster, lbs, 60, (v) =>
        [...v.values()].every((l) => l.find((s) => s.server === w.name)?.status === 'DRAIN'),
      );
      if (!up.ok) {
        o.say(`${w.name}: not UP again in both proxies after 60 s: it stays drained (\`hasetup undrain\` once it is fixed)`);
        stopped = true;
        break;
      }
      await setState(o.cluster, lbs, w.name, 'ready');
      o.say(`${w.name}: UP in both proxies and back in rotation`);
    } else if (failed) {
      stopped = true;
      break;
    }
  }
  if (!stopped && !o.signal?.aborted && rest.length) results.push(await o.run({ ...o, reporter: step, limit: rest.map((h) => h.name) }));
  const all = merge(results, !!o.check);
  if (stopped) for (const h of [...webs, ...rest]) all.hosts[h.name] ??= { ok: 0, changed: 0, failed: 0, unreachable: 0, skipped: 1 };
  o.reporter.end(all);
  return all;
}
