import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { prose } from '../help.ts';
// The engine and the inventory loader load only when the command runs (fast --help).

interface DrainFlags {
  wait: string;
  maint?: boolean;
  force?: boolean;
}

const DRAIN_HELP = `
On both LBs, the backup first (every proxy worker; HAProxy's runtime socket with runtime: haproxy), the web node goes to DRAIN: no new request reaches it, those in flight finish. hasetup waits (--wait, default 60 s) until it has no session left on either LB and says so; with --maint it then goes to MAINT (health checks stop: the node may go down). The state is recorded on the LBs, so a proxy reload or an apply keeps it, and hasetup status shows it. Draining the last web node that serves is refused unless --force. Ctrl-C while waiting leaves the node drained (hasetup undrain puts it back).

Examples:
  hasetup drain inventory.yaml web01
  hasetup drain inventory.yaml web01 --maint --wait 120
  hasetup undrain inventory.yaml web01`;

/** The proxy role on the LBs alone, quietly: haproxy.cfg follows the records (one LB at a time, hitless reloads). */
async function applyProxyRole(inv: import('../../inventory/types.ts').Inventory): Promise<void> {
  const [{ connectHost }, { secretValues }, { Redactor }, { PlainReporter }, { run, failedRun }, { loadRoles }, { ROLES }] =
    await Promise.all([
      import('../connect.ts'),
      import('../../inventory/secrets.ts'),
      import('../engine/redact.ts'),
      import('../engine/report.ts'),
      import('../engine/runner.ts'),
      import('../engine/registry.ts'),
      import('../../roles/index.ts'),
    ]);
  let out = '';
  const r = await run({
    inventory: inv,
    roles: await loadRoles(ROLES),
    connect: (h) => connectHost(inv, h),
    reporter: new PlainReporter(false, (s) => (out += s)),
    redactor: new Redactor(secretValues(inv)),
    limit: ['lb'],
    tags: ['proxy'],
  });
  if (failedRun(r))
    throw new UserError(
      `the proxy role failed on the LBs:\n${out
        .split('\n')
        .filter((l) => /failed|UNREACHABLE/.test(l))
        .join('\n')}`,
    );
}

async function prepare(file: string, host: string) {
  const [{ loadOrExplain, connectHost }, { Cluster }, drain] = await Promise.all([
    import('../connect.ts'),
    import('../cluster.ts'),
    import('../drain/runtime-api.ts'),
  ]);
  const inv = await loadOrExplain(file);
  const web = inv.hosts.find((h) => h.name === host);
  if (!web || web.group !== 'web') {
    const names = inv.hosts.filter((h) => h.group === 'web').map((h) => h.name);
    throw new UserError(`${host} is not a web node of ${file} (web nodes: ${names.join(', ')})`, 2);
  }
  const c = new Cluster(
    inv,
    (h) => connectHost(inv, h),
    () => Date.now(),
  );
  const lbs = await drain.lbOrder(c, inv);
  return { inv, c, lbs, drain };
}

export function registerDrain(program: Command): void {
  program
    .command('drain <inventory> <host>')
    .description(
      'Take a web node out of rotation on both LBs without anyone noticing: no new request, those in flight finish; optionally into maintenance.',
    )
    .option('--wait <seconds>', 'how long to wait for its sessions to end', '60')
    .option('--maint', 'then put it in MAINT (health checks stop)')
    .option('--force', 'drain it even when it is the last web node that serves')
    .addHelpText('after', prose(DRAIN_HELP))
    .action(async (file: string, host: string, flags: DrainFlags) => {
      const wait = Number(flags.wait);
      if (!Number.isFinite(wait) || wait < 0 || wait > 86400)
        throw new UserError(`--wait: expected a number of seconds from 0 to 86400, got "${flags.wait}"`, 2);
      const { inv, c, lbs, drain } = await prepare(file, host);
      const say = (m: string) => process.stdout.write(`${m}\n`);
      const ac = new AbortController();
      const onInt = () => ac.abort();
      try {
        const before = await drain.views(c, lbs);
        for (const [lb, list] of before)
          if (!list.some((s) => s.server === host)) throw new UserError(`${lb}'s proxy does not list ${host}: apply the inventory first`);
        const others = drain.othersServing(before, host);
        if (others.length === 0 && !flags.force)
          throw new UserError(
            `${host} is the last web node that serves on both LBs: draining it would leave the site with no server (--force to drain it anyway)`,
          );
        // recorded first: an interruption from here on leaves the node drained, and says so
        await drain.record(c, lbs, host, 'drain');
        process.on('SIGINT', onInt);
        await drain.setState(c, lbs, host, 'drain');
        say(
          `${host}: DRAIN on ${lbs.map((l) => l.name).join(' and ')} (no new requests; ${others.length ? `${others.join(', ')} serve${others.length === 1 ? 's' : ''}` : 'no other node serves'})`,
        );
        // the sessions are counted before haproxy.cfg is rewritten: a reload hands the old sessions to
        // the old process, whose counts the runtime API no longer shows
        const w = await drain.waitViews(c, lbs, wait, (v) => Object.values(drain.sessionsOf(v, host)).every((n) => n === 0), ac.signal);
        // kept in haproxy.cfg (the record written above), also when interrupted
        await applyProxyRole(inv);
        if (ac.signal.aborted) {
          process.stderr.write(
            `hasetup: interrupted: ${host} stays drained on both LBs (\`hasetup undrain ${file} ${host}\` puts it back)\n`,
          );
          process.exitCode = 130;
          return;
        }
        const left = drain.sessionsOf(w.view, host);
        if (!w.ok) {
          say(
            `${host}: still ${Object.entries(left)
              .map(([lb, n]) => `${n} session(s) on ${lb}`)
              .join(', ')} after ${wait} s; it gets no new requests`,
          );
          process.exitCode = 1;
          return;
        }
        say(`${host}: no session left on ${lbs.map((l) => l.name).join(' or ')} (${(w.ms / 1000).toFixed(1)} s)`);
        if (flags.maint) {
          await drain.record(c, lbs, host, 'maint');
          await drain.setState(c, lbs, host, 'maint');
          await applyProxyRole(inv);
          say(`${host}: MAINT on both LBs (health checks stopped)`);
        }
      } finally {
        process.off('SIGINT', onInt);
        await c.close();
      }
    });

  program
    .command('undrain <inventory> <host>')
    .description('Put a drained web node back in rotation on both LBs, and wait until both proxies see it UP and it serves again.')
    .option('--wait <seconds>', 'how long to wait for it to be UP and serving', '60')
    .addHelpText('after', '\nExample:\n  hasetup undrain inventory.yaml web01')
    .action(async (file: string, host: string, flags: { wait: string }) => {
      const wait = Number(flags.wait);
      if (!Number.isFinite(wait) || wait < 0 || wait > 86400)
        throw new UserError(`--wait: expected a number of seconds from 0 to 86400, got "${flags.wait}"`, 2);
      const { inv, c, lbs, drain } = await prepare(file, host);
      const say = (m: string) => process.stdout.write(`${m}\n`);
      try {
        await drain.record(c, lbs, host, null);
        await applyProxyRole(inv);
        await drain.setState(c, lbs, host, 'ready');
        const up = await drain.waitViews(c, lbs, wait, (v) =>
          [...v.values()].every((l) => l.find((s) => s.server === host)?.status === 'UP'),
        );
        if (!up.ok)
          throw new UserError(
            `${host} is not UP on both LBs after ${wait} s: ${[...up.view].map(([lb, l]) => `${lb} sees ${l.find((s) => s.server === host)?.status ?? 'nothing'}`).join(', ')}`,
          );
        // serving: a request through the VIP answered by it
        const url = `http://${inv.vip.address}:${inv.roles.proxy.port}/`;
        const nodes = inv.hosts.filter((h) => h.group === 'web').length;
        let served = false;
        for (let i = 0; i < nodes * 4 && !served; i++) {
          const r = await fetch(url, { signal: AbortSignal.timeout(5000) }).catch(() => null);
          served = r?.headers.get('x-served-by') === host;
          await r?.arrayBuffer().catch(() => {});
        }
        say(
          `${host}: READY on ${lbs.map((l) => l.name).join(' and ')}, UP in both proxies${served ? ', and serving through the VIP' : ' (no request through the VIP reached it yet)'}`,
        );
        if (!served) process.exitCode = 1;
      } finally {
        await c.close();
      }
    });
}
