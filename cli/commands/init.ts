import type { Command } from 'commander';
import { prose } from '../help.ts';
import { UserError } from '../errors.ts';
import type { AnswerFlags } from '../init/answers.ts';
// The wizard, inquirer and the engine load only when the command runs (fast --help).

interface InitFlags extends AnswerFlags {
  output?: string;
  answers?: string;
  yes?: boolean;
  offline?: boolean;
  force?: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function registerInit(program: Command): void {
  program
    .command('init [dir]')
    .description(
      'Interactive wizard: asks for the hosts, SSH access, VIP and interface, ' +
        'checks every host over SSH (in parallel), and writes DIR/inventory.yaml ' +
        '(commented) and its secrets file (mode 0600). Every answer can be given ' +
        'ahead by a flag or in --answers FILE: the wizard asks only for the rest.',
    )
    .option('-o, --output <file>', 'the inventory to write (default: DIR/inventory.yaml; the secrets file goes next to it)')
    .option('--answers <file>', 'answers in a YAML file (the keys are the flags below, snake_case: see the example); flags win over it')
    .option('-y, --yes', 'take the default of every answer not given, without asking (write at once when every check passes)')
    .option('--offline', 'do not contact the hosts: no host checks, the LB interface and admin networks are not read from them')
    .option('-f, --force', 'replace an existing inventory without asking (its secrets file is kept)')
    .option('--cluster <name>', 'cluster name (default webfarm)')
    .option('--web-nodes <n>', 'number of web nodes, 1-99 (default 2)')
    .option('--db-replica', 'add a MySQL replica (default: a primary only)')
    .option('--no-db-replica', 'no MySQL replica')
    .option('--lb <hosts>', 'the 2 load balancers: NAME=ADDRESS or ADDRESS, comma-separated (names default to lb01, lb02)')
    .option('--web <hosts>', 'the web nodes, the same way (web01, web02...)')
    .option('--db <hosts>', 'the MySQL primary, then its replica if any (db01, db02)')
    .option('--ssh-user <user>', 'the user hasetup logs in as: root, or a user with passwordless sudo (default root)')
    .option('--ssh-port <port>', 'the SSH port of every host (default 22)')
    .option('--ssh-key <path>', 'the private key to log in with, or "agent" for the SSH agent\'s keys (default: the first key in ~/.ssh)')
    .option('--connect-timeout <seconds>', 'SSH connect timeout, 1-600 (default 10)')
    .option('--known-hosts <path>', 'where host keys are recorded (default .hasetup/known_hosts next to the inventory)')
    .option('--vip <address/prefix>', "the virtual IP: unused, in the LBs' subnet (default: a free address there)")
    .option('--interface <name>', "the LBs' interface that carries their addresses (default: read from the LBs, else eth0)")
    .option('--vrrp <mode>', 'multicast or unicast adverts (default multicast; many providers block multicast)')
    .option(
      '--admin-cidr <cidr>',
      "an admin network allowed to SSH; repeat or comma-separate (default: this machine's address as the hosts see it)",
      collect,
    )
    .option(
      '--runtime <runtime>',
      "bundled (hasetup's proxy and VRRP daemon) or haproxy (Debian's HAProxy and keepalived) (default bundled)",
    )
    .addHelpText(
      'after',
      prose(`
Checks (all hosts in parallel, unless --offline): SSH reachable; host key recorded (trust on first
use: the fingerprint is shown, and recorded where apply reads it when the inventory is written);
Debian or Ubuntu with systemd; sudo without a password prompt when not root; the LBs' interface
exists and carries each LB's address (other hosts: the address is theirs); memory and free space on
/var for the role (LB 256 MiB / 512 MiB, web 384 MiB / 1 GiB, db 512 MiB / 2 GiB); SSH from this
machine stays allowed by the admin networks; the VIP answers nobody on the LBs' network. A table
shows every check and what to do about each problem; you can change any answer and check again.

Without a terminal, the wizard asks nothing: answers not given take their defaults, and it exits 2
listing the flags still missing (the host addresses have no default). A host check that fails
then exits 1 and writes nothing. Ctrl-C at any point writes nothing.

Answers file (YAML):
  cluster: webfarm
  web_nodes: 2
  db_replica: false
  hosts:
    lb: [lb01=10.0.0.11, lb02=10.0.0.12]
    web: [{ name: web01, address: 10.0.0.21 }, web02=10.0.0.22]
    db: [db01=10.0.0.31]
  ssh: { user: root, port: 22, private_key: ~/.ssh/id_ed25519 }
  vip: 10.0.0.100/24
  interface: eth0
  vrrp: multicast
  admin_cidrs: [10.0.0.5/32]
  runtime: bundled

Examples:
  hasetup init                                   # asks everything, writes ./inventory.yaml
  hasetup init cluster/ --lb 10.0.0.11,10.0.0.12 --web 10.0.0.21,10.0.0.22 --db 10.0.0.31 --yes
  hasetup init --answers answers.yaml --force    # a script: no question asked
  hasetup lab exec -- hasetup init lab-init/     # against the lab (from its controller namespace)`),
    )
    .action(async (dir: string | undefined, flags: InitFlags) => {
      const [{ resolve, join }, answers, { Wizard }, { InquirerPrompter }] = await Promise.all([
        import('node:path'),
        import('../init/answers.ts'),
        import('../init/wizard.ts'),
        import('../init/prompter.ts'),
      ]);
      const file = resolve(flags.output ?? join(dir ?? '.', 'inventory.yaml'));
      const fromFile = flags.answers ? await answers.readAnswersFile(flags.answers) : { given: { hosts: {} }, errors: [] };
      const fromFlags = await answers.checkFlags(flags, { baseDir: process.cwd() });
      const errors = [...fromFile.errors, ...fromFlags.errors];
      if (errors.length) throw new UserError(`bad answers (nothing was written):\n${errors.map((e) => `  ${e}`).join('\n')}`, 2);
      const given = answers.mergeGiven(fromFile.given, fromFlags.given);
      const tty = !!process.stdin.isTTY && !!process.stdout.isTTY;
      const plain = !process.stdout.isTTY || !!process.env.NO_COLOR || !!process.env.CI;
      await new Wizard({
        file,
        given,
        tty,
        yes: !!flags.yes,
        offline: !!flags.offline,
        force: !!flags.force,
        plain,
        prompter: new InquirerPrompter(!plain),
      }).run();
    });
}
