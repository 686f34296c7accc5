import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { prose } from '../help.ts';
// The deploy, the inventory loader and SSH load only when the command runs (fast --help).

interface Flags {
  rollback?: boolean;
  check?: boolean;
  limit?: string;
  json?: boolean;
}

const HELP = `
The site is roles.app.source of the inventory (a folder, relative to the inventory), or, without it, the demo application hasetup ships (PHP: a session, a few rows read and one written on the primary). Each web node gets it as a release: a new folder under /var/www/hasetup/releases, named by its time and the site's checksum, made of hard links to the current release and the files whose checksum differs (only those travel); then the \`current\` link the vhost serves is switched in one rename, and PHP-FPM is reloaded, so that opcache sees the new release at once. The last roles.app.keep_releases releases are kept (default 3).

One web node at a time: out of rotation on both LBs first (MAINT, the backup LB first) until neither has a request on it, then the switch; the node must answer its entry page (/) on its own loopback with 2xx or 3xx, running the new release's PHP; then health checks resume and it goes back into rotation once both proxies see it UP. A node that does not answer (a PHP syntax error answers 500) goes back to its old release and into rotation, and the deploy stops there: the other nodes keep the old release. A node already serving exactly the site's files is left alone: a deploy with nothing changed changes nothing. \`apply\` deploys too, after the roles, when the site changed.

--rollback switches each node, the same way, to the release before its current one.

Exit 0 when every node serves the release, 1 when a node failed (the message says which and why), 2 on a usage error or a site that cannot be sent (a symbolic link, a file name with control characters), 130 when interrupted.

Examples:
  hasetup deploy inventory.yaml
  hasetup deploy inventory.yaml --check
  hasetup deploy inventory.yaml --rollback
  hasetup lab exec -- hasetup deploy lab/inventory.yaml`;

export function registerDeploy(program: Command): void {
  program
    .command('deploy <inventory>')
    .description(
      'Deploy the site (roles.app.source, or the demo application) to every web node as a new release, one node at a time out of rotation, without a lost request; --rollback goes back one release.',
    )
    .option('--rollback', 'switch every web node back to the release before its current one')
    .option('--check', 'change nothing: say what would travel')
    .option('--limit <hosts>', 'only these web nodes (comma-separated), in this order')
    .option('--json', 'the outcome per node as JSON on stdout (messages on stderr)')
    .addHelpText('after', prose(HELP))
    .action(async (file: string, flags: Flags) => {
      const [{ loadOrExplain, connectHost }, { Cluster }, { deploy, DeployError }, { SiteError }, { secretValues }, { Redactor }] =
        await Promise.all([
          import('../connect.ts'),
          import('../cluster.ts'),
          import('../deploy/run.ts'),
          import('../deploy/manifest.ts'),
          import('../../inventory/secrets.ts'),
          import('../engine/redact.ts'),
        ]);
      const inv = await loadOrExplain(file);
      const webs = inv.hosts.filter((h) => h.group === 'web');
      let nodes = webs;
      if (flags.limit) {
        const names = flags.limit
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const unknown = names.filter((n) => !webs.some((w) => w.name === n));
        if (unknown.length)
          throw new UserError(
            `--limit: ${unknown.join(', ')} is not a web node of ${file} (web nodes: ${webs.map((w) => w.name).join(', ')})`,
            2,
          );
        nodes = names.map((n) => webs.find((w) => w.name === n)!);
      }
      const redactor = new Redactor(secretValues(inv));
      const say = (m: string) => (flags.json ? process.stderr : process.stdout).write(`${redactor.redact(m)}\n`);
      const cluster = new Cluster(
        inv,
        (h) => connectHost(inv, h),
        () => Date.now(),
      );
      const ac = new AbortController();
      const onInt = () => {
        if (ac.signal.aborted) process.exit(130);
        process.stderr.write('\nhasetup: interrupted: finishing the node in progress (Ctrl-C again to quit now)\n');
        ac.abort();
      };
      process.on('SIGINT', onInt);
      try {
        const r = await deploy({ inv, cluster, nodes, rollback: flags.rollback, check: flags.check, say, signal: ac.signal });
        if (flags.json) process.stdout.write(`${JSON.stringify(r)}\n`);
        else {
          const changed = r.nodes.filter((n) => n.status === 'deployed' || n.status === 'rolled back').length;
          say(
            `${flags.rollback ? 'rollback' : 'deploy'}: ${r.ok ? 'done' : 'FAILED'} in ${(r.ms / 1000).toFixed(1)} s: ${changed} node(s) changed, ${r.nodes.filter((n) => n.status === 'unchanged').length} unchanged${r.hash ? ` (site ${r.hash.slice(0, 12)}, ${r.files} files)` : ''}`,
          );
        }
        if (ac.signal.aborted) process.exitCode = 130;
        else if (!r.ok) process.exitCode = 1;
      } catch (e) {
        if (e instanceof SiteError) throw new UserError(e.message, 2);
        if (e instanceof DeployError) throw new UserError(e.message, 1);
        throw e;
      } finally {
        process.off('SIGINT', onInt);
        await cluster.close();
      }
    });
}
