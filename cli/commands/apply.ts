import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { ROLES, ROLE_NAMES, loadSizing, servesRelease } from '../../roles/index.ts';
// The engine, the inventory loader and their libraries load only when the command runs, so that
// `--help` and other commands start fast.

interface ApplyFlags {
  check?: boolean;
  diff?: boolean;
  limit?: string;
  tags?: string;
  json?: boolean;
  rolling?: string;
}

function plainOutput(): boolean {
  return !process.stdout.isTTY || !!process.env.NO_COLOR || !!process.env.CI;
}

export function registerApply(program: Command): void {
  program
    .command('apply <inventory>')
    .description(
      'Apply the roles to every host of the inventory over SSH, all hosts in parallel. ' +
        `Roles, in order: ${ROLE_NAMES.join(', ')}. Each task reports ok / changed / failed; ` +
        "a second run changes nothing. At the end, the cluster's concurrency chain as the roles sized it from the hosts' memory and CPU " +
        "(PHP-FPM children, Apache workers, each LB's maxconn per node, MariaDB's max_connections). Exits 1 when a task failed or a host was unreachable, 2 on a usage error, 130 when interrupted.",
    )
    .option('--check', 'change nothing: report what would change')
    .option('--diff', 'show the differences of files (and other changes)')
    .option('--limit <hosts>', 'only these hosts or groups (comma-separated: lb01,web)')
    .option('--tags <roles>', 'only these roles (comma-separated: common,apache)')
    .option('--json', 'machine-readable results on stdout, ending with {"hosts": {NAME: {ok, changed, failed, unreachable, skipped}}}')
    .option(
      '--rolling <group>',
      'web: the web nodes one at a time, each drained on both LBs before its changes and back in rotation once both proxies see it UP (then the other hosts)',
    )
    .addHelpText(
      'after',
      `
Examples:
  hasetup apply inventory.yaml
  hasetup apply inventory.yaml --check --diff
  hasetup apply inventory.yaml --limit web01 --tags common
  hasetup apply inventory.yaml --rolling web              (an Apache restart on every node, without a lost request)
  hasetup lab exec -- hasetup apply lab/inventory.yaml   (lab hosts are reached from the lab's controller namespace)`,
    )
    .action(async (file: string, flags: ApplyFlags) => {
      const [
        { loadOrExplain, connectHost },
        { secretValues },
        { Redactor },
        { JsonReporter, ListrReporter, PlainReporter },
        { failedRun, run, selectHosts, selectRoles },
        { loadRoles },
      ] = await Promise.all([
        import('../connect.ts'),
        import('../../inventory/secrets.ts'),
        import('../engine/redact.ts'),
        import('../engine/report.ts'),
        import('../engine/runner.ts'),
        import('../engine/registry.ts'),
      ]);
      type Reporter = import('../engine/runner.ts').Reporter;
      type ListrReporterT = import('../engine/report.ts').ListrReporter;
      const inv = await loadOrExplain(file);
      const redactor = new Redactor(secretValues(inv));
      const split = (s?: string) =>
        s
          ? s
              .split(',')
              .map((x) => x.trim())
              .filter(Boolean)
          : undefined;
      const roles = await loadRoles(ROLES);
      // a --limit or --tags that names nothing is a usage error, before anything is contacted
      try {
        selectHosts(inv, split(flags.limit));
        selectRoles(roles, split(flags.tags));
      } catch (e) {
        throw new UserError((e as Error).message, 2);
      }
      if (flags.rolling !== undefined && flags.rolling !== 'web')
        throw new UserError(`--rolling: only the web nodes roll (--rolling web), not "${flags.rolling}"`, 2);
      let listr: ListrReporterT | undefined;
      let reporter: Reporter;
      if (flags.json) reporter = new JsonReporter();
      else if (plainOutput() || flags.rolling) reporter = new PlainReporter(!!flags.diff);
      else reporter = listr = new ListrReporter(!!flags.diff);

      // SIGINT: finish the step in progress, then stop; a second SIGINT stops at once.
      const ac = new AbortController();
      const onInt = () => {
        if (ac.signal.aborted) process.exit(130);
        process.stderr.write('\nhasetup: interrupted: finishing the current step (Ctrl-C again to quit now)\n');
        ac.abort();
      };
      process.on('SIGINT', onInt);
      let result;
      // a fixed max_connections against the pools sized from the web nodes' memory: checked once their
      // facts are in, before any change (the fixed numbers alone were checked when the inventory loaded)
      const { contradictions } = await loadSizing();
      const preflight =
        inv.roles.mysql.maxConnections !== 'auto'
          ? {
              hosts: inv.hosts.filter((h) => h.group === 'web'),
              check: (f: Parameters<typeof contradictions>[1]) => contradictions(inv, f),
            }
          : undefined;
      const opts = {
        inventory: inv,
        roles,
        connect: (h: import('../../inventory/types.ts').Host) => connectHost(inv, h),
        reporter,
        redactor,
        check: !!flags.check,
        limit: split(flags.limit),
        tags: split(flags.tags),
        signal: ac.signal,
        preflight,
      };
      try {
        if (flags.rolling) {
          const [{ rollingApply }, { Cluster }] = await Promise.all([import('../rolling.ts'), import('../cluster.ts')]);
          const cluster = new Cluster(inv, opts.connect, () => Date.now());
          try {
            result = await rollingApply(
              { ...opts, hosts: selectHosts(inv, opts.limit), cluster, run, say: (m) => process.stderr.write(`${redactor.redact(m)}\n`) },
              inv,
            );
          } finally {
            await cluster.close();
          }
        } else result = await run(opts);
      } finally {
        process.off('SIGINT', onInt);
      }
      if (listr) await listr.finish(result);
      // the cluster's concurrency, once, as the roles sized it from the facts of this run
      if (!flags.json && Object.keys(result.facts).length) {
        const { clusterSizing } = await loadSizing();
        try {
          const s = clusterSizing(inv, (h) => result.facts[h.name]);
          if (s.lines.length) process.stdout.write(`concurrency (requests at once):\n${s.lines.map((l) => `  ${l}`).join('\n')}\n`);
        } catch (e) {
          // a contradiction the roles already reported as their failure
          process.stdout.write(`concurrency: ${(e as Error).message}\n`);
        }
      }
      if (result.interrupted) process.exitCode = 130;
      else if (failedRun(result)) process.exitCode = 1;
      // the site, once the roles are done: deployed to the web nodes whose release differs
      else {
        const webs = selectHosts(inv, opts.limit).filter((h) => h.group === 'web');
        // only when the app role ran too: without its PHP-FPM pool a release cannot answer its check
        const tagged = !opts.tags || opts.tags.includes('app');
        if (webs.length && tagged && servesRelease(inv)) {
          const [{ deploy }, { Cluster }] = await Promise.all([import('../deploy/run.ts'), import('../cluster.ts')]);
          const cluster = new Cluster(inv, opts.connect, () => Date.now());
          const say = (m: string) => (flags.json ? process.stderr : process.stdout).write(`deploy: ${redactor.redact(m)}\n`);
          try {
            const d = await deploy({ inv, cluster, nodes: webs, check: opts.check, say, signal: ac.signal });
            if (!d.ok) process.exitCode = 1;
          } catch (e) {
            say(`failed: ${(e as Error).message}`);
            process.exitCode = 1;
          } finally {
            await cluster.close();
          }
        }
      }
    });
}
