// `hasetup init`: asks what it was not told (flags, answers file), contacts the hosts, judges what
// it found, lets the user change any answer, and writes the inventory and its secrets file. Nothing
// is written before the last step, so Ctrl-C (or quitting) anywhere leaves no file behind.
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import { renderInventoryYaml } from '../../inventory/render.ts';
import { secretsPathFor } from '../../inventory/secrets.ts';
import { expandPath } from '../../inventory/load.ts';
import { intToIPv4, networkOf } from '../../inventory/net.ts';
import { UserError } from '../errors.ts';
import {
  defaultHostName,
  GROUPS,
  hostCounts,
  hostLabel,
  missingAnswers,
  type Answers,
  type Given,
  type Group,
  type HostAnswer,
} from './answers.ts';
import { answerRows, detectInterface, hostRows, problems, renderTable, vipHolder, type Row } from './checks.ts';
import { inventoryHeader, inventoryModel, knownHostsPath } from './model.ts';
import { probeAll, Prober, type Access, type Probe, type Target, type VipSeen } from './probe.ts';
import { isPromptExit, type Prompter } from './prompter.ts';
import {
  askAdminCidrs,
  askCluster,
  askHost,
  askInterface,
  askRuntime,
  askSshKey,
  askSshPort,
  askSshUser,
  askTopology,
  askVip,
  askVrrp,
  DEFAULTS,
} from './questions.ts';
import { findKeys } from './ssh-keys.ts';
import { nextAddress, suggestVip, type NamedHost, type Resolver } from './validate.ts';
import { writeInventory, type Written } from './write.ts';

export interface WizardOptions {
  /** Absolute path of the inventory to write. */
  file: string;
  given: Given;
  /** A terminal to ask on. */
  tty: boolean;
  /** Take every default without asking. */
  yes: boolean;
  offline: boolean;
  force: boolean;
  /** Plain output (no live progress, no colours): not a terminal, or NO_COLOR / CI. */
  plain: boolean;
  prompter: Prompter;
  resolve?: Resolver;
  keysDir?: string;
  out?: (s: string) => void;
}

type Source = 'given' | 'detected' | 'asked' | 'default';

/** This machine's source address towards dest (no packet is sent: a UDP socket is only connected). */
export function localAddressTowards(dest: string): Promise<string | null> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const done = (v: string | null) => {
      try {
        s.close();
      } catch {}
      resolve(v);
    };
    s.on('error', () => done(null));
    try {
      s.connect(9, dest, () => {
        try {
          done(s.address().address);
        } catch {
          done(null);
        }
      });
    } catch {
      done(null);
    }
  });
}

export class Wizard {
  private a: Partial<Answers> & { hosts: Record<Group, HostAnswer[]> } = { hosts: { lb: [], web: [], db: [] } };
  private interfaceSource: Source = 'default';
  private prober?: Prober;
  private probes = new Map<string, Probe>();
  private probedWith = new Map<string, string>();
  private readonly out: (s: string) => void;
  private overwriteOk: boolean;

  constructor(private readonly o: WizardOptions) {
    this.out = o.out ?? ((s) => process.stdout.write(s));
    this.overwriteOk = o.force;
  }

  private get p(): Prompter {
    return this.o.prompter;
  }

  private get shown(): string {
    const rel = relative(process.cwd(), this.o.file);
    return rel && !rel.startsWith('..') ? rel : this.o.file;
  }

  private get answers(): Answers {
    return this.a as Answers;
  }

  /** The given answer, else the default without asking (--yes, no terminal), else the question. */
  private async take<T>(given: T | undefined, def: T | undefined, ask: (def: T | undefined) => Promise<T>): Promise<T> {
    if (given !== undefined) return given;
    if ((this.o.yes || !this.o.tty) && def !== undefined) return def;
    if (!this.o.tty) throw new UserError('an answer is missing and there is no terminal to ask on (see hasetup init --help)', 2);
    return ask(def);
  }

  async run(): Promise<Written | null> {
    // Outside a prompt (the prompts turn Ctrl-C into an error of their own): the checks, the writing.
    const signals: [NodeJS.Signals, number][] = [
      ['SIGINT', 130],
      ['SIGTERM', 143],
      ['SIGHUP', 129],
    ];
    const handlers = signals.map(([sig, code]) => {
      const h = () => {
        this.prober?.removeScratch();
        process.stderr.write('\nhasetup: interrupted: nothing was written\n');
        process.exit(code);
      };
      process.on(sig, h);
      return [sig, h] as const;
    });
    try {
      return await this.steps();
    } catch (e) {
      if (isPromptExit(e)) throw new UserError('interrupted: nothing was written', 130);
      throw e;
    } finally {
      for (const [sig, h] of handlers) process.off(sig, h);
      await this.prober?.close();
    }
  }

  private async steps(): Promise<Written | null> {
    const g = this.o.given;
    if (!this.o.tty) {
      const missing = missingAnswers(g);
      if (missing.length) {
        const w = Math.max(...missing.map((m) => m.flag.length));
        throw new UserError(
          `no terminal to ask on, and these answers are missing:\n${missing.map((m) => `  ${m.flag.padEnd(w)}  ${m.what}`).join('\n')}\n` +
            'Give them as flags or in --answers FILE (hasetup init --help lists every answer and its default).',
          2,
        );
      }
    }
    if (existsSync(this.o.file) && !this.o.force) {
      if (!this.o.tty) throw new UserError(`${this.shown} exists: nothing was written (--force replaces it)`, 2);
      const yes = await this.p.confirm({
        message: `${this.shown} exists. Replace it?`,
        help: "Its secrets file, if any, is kept: the cluster's passwords stay.",
        default: false,
      });
      if (!yes) throw new UserError(`${this.shown} was kept: nothing was written`, 1);
      this.overwriteOk = true;
    }

    this.a.cluster = await this.take(g.cluster, DEFAULTS.cluster, (d) => askCluster(this.p, d!));
    const counts = hostCounts(g);
    const topologyGiven = g.webNodes !== undefined || g.dbReplica !== undefined || (g.hosts.web !== undefined && g.hosts.db !== undefined);
    const topo = await this.take(
      topologyGiven ? { webNodes: counts.web, dbReplica: counts.db > 1 } : undefined,
      { webNodes: DEFAULTS.webNodes, dbReplica: DEFAULTS.dbReplica },
      (d) => askTopology(this.p, d!),
    );
    await this.askHosts({ lb: 2, web: topo.webNodes, db: g.hosts.db?.length ?? (topo.dbReplica ? 2 : 1) });

    this.a.sshUser = await this.take(g.sshUser, DEFAULTS.sshUser, (d) => askSshUser(this.p, d!));
    this.a.sshPort = await this.take(g.sshPort, DEFAULTS.sshPort, (d) => askSshPort(this.p, d!));
    const keyDefault = this.defaultKey();
    this.a.sshKey =
      g.sshKey !== undefined
        ? g.sshKey
        : await this.take<string | null>(undefined, keyDefault, (d) => askSshKey(this.p, d ?? null, this.keyOpts()));
    this.a.connectTimeout = g.connectTimeout ?? DEFAULTS.connectTimeout;
    this.a.knownHosts = g.knownHosts ?? null;

    if (!this.o.offline) await this.probe();

    await this.decideInterface(true);
    this.a.vip = await this.take(g.vip, this.vipSuggestion(), (d) => askVip(this.p, d, this.answers, this.probes.size > 0));
    this.a.vrrp = await this.take(g.vrrp, DEFAULTS.vrrp, (d) => askVrrp(this.p, d!));
    const admin = await this.adminSuggestion();
    this.a.adminCidrs = await this.take(g.adminCidrs, admin.cidrs, (d) => askAdminCidrs(this.p, d!, admin.whence));
    this.a.runtime = await this.take(g.runtime, DEFAULTS.runtime, (d) => askRuntime(this.p, d!));

    for (;;) {
      const rows = await this.check();
      const bad = problems(rows);
      this.showAnswers();
      if (rows.length) this.out(`\n${renderTable(rows, { unicode: !this.o.plain })}\n`);
      if (this.o.offline) this.out('\nHost checks skipped (--offline).\n');
      if (bad.length) this.out(`\n${bad.length} problem${bad.length > 1 ? 's' : ''} found.\n`);
      if (!this.o.tty) {
        if (bad.length)
          throw new UserError(
            `${bad.length} problem${bad.length > 1 ? 's' : ''} found (see the table): nothing was written. Fix them and run again, or --offline to write without checking the hosts`,
            1,
          );
        break;
      }
      if (this.o.yes && bad.length === 0) break;
      const next = await this.p.select({
        message: 'What now?',
        help: bad.length
          ? 'Change an answer, or fix the hosts and check them again.'
          : this.o.offline
            ? 'The hosts were not checked (--offline).'
            : 'Every check passed.',
        choices: [
          {
            name: bad.length
              ? `write ${this.shown} anyway (${bad.length} problem${bad.length > 1 ? 's' : ''})`
              : `write ${this.shown} and its secrets file`,
            value: 'write',
          },
          { name: 'change an answer', value: 'change' },
          ...(this.o.offline ? [] : [{ name: 'check the hosts again', value: 'recheck' }]),
          { name: 'quit without writing anything', value: 'quit' },
        ],
        default: bad.length ? 'change' : 'write',
      });
      if (next === 'write') break;
      if (next === 'quit') throw new UserError('nothing was written', 1);
      if (next === 'recheck') this.probedWith.clear();
      if (next === 'change') await this.change();
      if (!this.o.offline) await this.probe();
      await this.decideInterface(false);
    }
    return this.write();
  }

  private keyOpts() {
    return { keysDir: this.o.keysDir, baseDir: dirname(this.o.file) };
  }

  /** The first key found in ~/.ssh, else the agent's keys. */
  private defaultKey(): string | null {
    return findKeys(this.o.keysDir)[0]?.path ?? null;
  }

  private named(skip?: { g: Group; i: number }): NamedHost[] {
    return GROUPS.flatMap((g) =>
      this.a.hosts[g].flatMap((h, i) =>
        skip && skip.g === g && skip.i === i ? [] : [{ label: hostLabel(g, i), name: h.name, address: h.address }],
      ),
    );
  }

  /** Fills the host lists to these counts: given hosts as they are, the others asked. */
  private async askHosts(counts: Record<Group, number>): Promise<void> {
    for (const g of GROUPS) {
      const given = this.o.given.hosts[g] ?? [];
      this.a.hosts[g] = this.a.hosts[g].slice(0, counts[g]);
      for (let i = 0; i < counts[g]; i++) {
        if (this.a.hosts[g][i]) continue;
        const gv = given[i];
        if (gv) {
          this.a.hosts[g][i] = {
            name: gv.name ?? defaultHostName(g, i),
            address: gv.address,
            ...(gv.sshHost ? { sshHost: gv.sshHost } : {}),
          };
          continue;
        }
        this.a.hosts[g][i] = await this.askOneHost(g, i, {});
      }
    }
  }

  private async askOneHost(g: Group, i: number, def: { name?: string; address?: string }): Promise<HostAnswer> {
    const others = this.named({ g, i });
    // the next address after the previous host of the same group (lb02 after lb01): a likely guess, never taken unasked
    const address = def.address ?? (i > 0 ? nextFree(this.a.hosts[g][i - 1]?.address, others) : undefined);
    return askHost(this.p, g, i, { ...def, ...(address ? { address } : {}) }, others, {
      vip: this.a.vip,
      resolve: this.o.resolve,
      askName: !this.o.yes || def.name !== undefined,
    });
  }

  private targets(): Target[] {
    return GROUPS.flatMap((g) =>
      this.a.hosts[g].map((h) => ({ name: h.name, group: g, address: h.address, sshHost: h.sshHost ?? h.address })),
    );
  }

  private access(): Access {
    const a = this.answers;
    return {
      user: a.sshUser,
      port: a.sshPort,
      connectTimeout: a.connectTimeout,
      ...(a.sshKey ? { privateKey: expandPath(a.sshKey, dirname(this.o.file)) } : {}),
    };
  }

  /** Probes the hosts not probed yet with their current address and SSH settings. */
  private async probe(): Promise<void> {
    this.prober ??= Prober.create(knownHostsPath(this.answers, this.o.file));
    const access = this.access();
    const keyOf = (t: Target) => JSON.stringify([t.sshHost, access]);
    const all = this.targets();
    for (const name of [...this.probes.keys()]) if (!all.some((t) => t.name === name)) this.probes.delete(name);
    const todo = all.filter((t) => this.probedWith.get(t.name) !== keyOf(t));
    if (todo.length === 0) return;
    this.out(
      `\nContacting ${todo.length === all.length ? 'the hosts' : todo.map((t) => t.name).join(', ')} (SSH as ${access.user}, port ${access.port})...\n`,
    );
    const r = await probeAll(this.prober, todo, access, { plain: this.o.plain });
    for (const t of todo) {
      this.probes.set(t.name, r.get(t.name) ?? { ok: false, error: 'not probed', fix: 'check the hosts again' });
      this.probedWith.set(t.name, keyOf(t));
    }
  }

  /** The LB interface: given, read from the LBs, or asked (first time) / kept (later). */
  private async decideInterface(first: boolean): Promise<void> {
    if (this.o.given.interface !== undefined) {
      this.a.interface = this.o.given.interface;
      this.interfaceSource = 'given';
      return;
    }
    if (!first && this.interfaceSource === 'asked') return;
    const d = detectInterface(
      this.targets().filter((t) => t.group === 'lb'),
      this.o.offline ? new Map() : this.probes,
    );
    if (d.name !== undefined) {
      if (this.a.interface !== d.name || first)
        this.p.note(`LB interface: ${d.name} (read from ${d.from.join(' and ')}: it carries their addresses)`);
      this.a.interface = d.name;
      this.interfaceSource = 'detected';
      return;
    }
    if (!first && this.a.interface) return;
    const def = d.guess ?? this.a.interface ?? DEFAULTS.interface;
    if (this.o.yes || !this.o.tty) {
      this.p.note(`LB interface: ${def} (default; not read from the LBs: ${d.why})`);
      this.a.interface = def;
      this.interfaceSource = 'default';
      return;
    }
    this.a.interface = await askInterface(this.p, def, d.why);
    this.interfaceSource = 'asked';
  }

  /** A free VIP in the LBs' subnet: not a host's address, nothing the LBs see on the network. */
  private vipSuggestion(): string | undefined {
    const lb = this.a.hosts.lb[0];
    if (!lb) return undefined;
    const d = detectInterface(
      this.targets().filter((t) => t.group === 'lb'),
      this.probes,
    );
    const prefix = d.name !== undefined ? d.prefix : 24;
    const taken = new Set(
      this.named()
        .map((h) => h.address!)
        .filter(Boolean),
    );
    for (const p of this.probes.values())
      if (p.ok) {
        p.neighbours.forEach((n) => taken.add(n));
        p.facts.interfaces.forEach((i) => i.addresses.forEach((x) => taken.add(x.split('/')[0])));
      }
    return suggestVip(lb.address, prefix, taken) ?? undefined;
  }

  /** This machine's address as the hosts see it ($SSH_CONNECTION), else as this machine would reach the first LB. */
  private async adminSuggestion(): Promise<{ cidrs: string[]; whence: string }> {
    const seen = [...new Set([...this.probes.values()].flatMap((p) => (p.ok && p.controller ? [p.controller] : [])))];
    if (seen.length) return { cidrs: seen.map((s) => `${s}/32`), whence: "this machine's address as the hosts see it" };
    const lb = this.a.hosts.lb[0];
    const local = lb ? await localAddressTowards(lb.address) : null;
    if (local && local !== '0.0.0.0') return { cidrs: [`${local}/32`], whence: "this machine's address towards the first load balancer" };
    return { cidrs: [`${intToIPv4(networkOf(lb.address, 24))}/24`], whence: "the load balancers' /24" };
  }

  private async check(): Promise<Row[]> {
    const a = this.answers;
    const rows = answerRows(a);
    if (this.o.offline) return rows;
    const vip = a.vip.split('/')[0];
    const seen = new Map<string, VipSeen>();
    const lbs = this.targets().filter((t) => t.group === 'lb');
    // on one LB already: this cluster's own VIP (the other LB sees it answer, and that is right)
    const holder = vipHolder(lbs, this.probes, vip);
    await Promise.all(
      lbs.map(async (t) => {
        const p = this.probes.get(t.name);
        if (!p?.ok || !this.prober) return;
        if (holder) seen.set(t.name, { state: 'held', by: holder });
        else
          seen.set(
            t.name,
            await this.prober.vipSeen(t, this.access(), vip, p.facts).catch((e: Error) => ({ state: 'unknown' as const, why: e.message })),
          );
      }),
    );
    for (const t of this.targets()) rows.push(...hostRows(t, this.probes.get(t.name), a, seen.get(t.name)));
    return rows;
  }

  private showAnswers(): void {
    const a = this.answers;
    const hosts = GROUPS.map((g) =>
      a.hosts[g].map((h) => `${h.name} ${h.sshHost ? `${h.sshHost} (${h.address})` : h.address}`).join(', '),
    ).join('; ');
    this.out(
      [
        '',
        'Answers:',
        `  cluster ${a.cluster}; hosts: ${hosts}`,
        `  SSH ${a.sshUser}${a.sshUser !== 'root' ? ' (sudo)' : ''}, port ${a.sshPort}, key ${a.sshKey ?? 'from the SSH agent'}`,
        `  VIP ${a.vip} on ${a.interface}, VRRP ${a.vrrp}, runtime ${a.runtime}, admin networks ${a.adminCidrs.join(', ')}`,
        '',
      ].join('\n'),
    );
  }

  /** The "change an answer" menu: one answer, asked again with its current value as the default. */
  private async change(): Promise<void> {
    const a = this.answers;
    const hostChoices = GROUPS.flatMap((g) =>
      a.hosts[g].map((h, i) => ({ name: `${h.name} (${h.sshHost ?? h.address})`, value: `host:${g}:${i}` })),
    );
    const what = await this.p.select({
      message: 'Which answer?',
      help: 'It is asked again with its current value as the default.',
      choices: [
        { name: `cluster name (${a.cluster})`, value: 'cluster' },
        { name: `topology (${a.hosts.web.length} web, ${a.hosts.db.length} database)`, value: 'topology' },
        ...hostChoices,
        { name: `SSH login (${a.sshUser})`, value: 'user' },
        { name: `SSH port (${a.sshPort})`, value: 'port' },
        { name: `SSH key (${a.sshKey ?? 'agent'})`, value: 'key' },
        { name: `LB interface (${a.interface})`, value: 'interface' },
        { name: `VIP (${a.vip})`, value: 'vip' },
        { name: `VRRP (${a.vrrp})`, value: 'vrrp' },
        { name: `admin networks (${a.adminCidrs.join(', ')})`, value: 'admin' },
        { name: `runtime (${a.runtime})`, value: 'runtime' },
        { name: 'none: back', value: 'back' },
      ],
      default: 'back',
    });
    if (what === 'cluster') a.cluster = await askCluster(this.p, a.cluster);
    else if (what === 'topology') {
      const t = await askTopology(this.p, { webNodes: a.hosts.web.length, dbReplica: a.hosts.db.length > 1 });
      await this.askHosts({ lb: 2, web: t.webNodes, db: t.dbReplica ? Math.max(2, a.hosts.db.length) : 1 });
    } else if (what.startsWith('host:')) {
      const [, g, i] = what.split(':');
      const h = a.hosts[g as Group][Number(i)];
      a.hosts[g as Group][Number(i)] = await this.askOneHost(g as Group, Number(i), { name: h.name, address: h.sshHost ?? h.address });
    } else if (what === 'user') a.sshUser = await askSshUser(this.p, a.sshUser);
    else if (what === 'port') a.sshPort = await askSshPort(this.p, a.sshPort);
    else if (what === 'key') a.sshKey = await askSshKey(this.p, a.sshKey, this.keyOpts());
    else if (what === 'interface') {
      a.interface = await askInterface(this.p, a.interface);
      this.interfaceSource = 'asked';
      this.o.given.interface = undefined;
    } else if (what === 'vip') a.vip = await askVip(this.p, a.vip, a, false);
    else if (what === 'vrrp') a.vrrp = await askVrrp(this.p, a.vrrp);
    else if (what === 'admin') {
      const s = await this.adminSuggestion();
      a.adminCidrs = await askAdminCidrs(this.p, a.adminCidrs, s.whence);
    } else if (what === 'runtime') a.runtime = await askRuntime(this.p, a.runtime);
  }

  private async write(): Promise<Written> {
    if (existsSync(this.o.file) && !this.overwriteOk)
      throw new UserError(`${this.shown} appeared meanwhile: nothing was written (--force replaces it)`, 1);
    const text = renderInventoryYaml(inventoryModel(this.answers), { header: inventoryHeader() });
    // No signal may cut the writing in two: it takes milliseconds.
    const hold = () => {};
    process.on('SIGINT', hold);
    try {
      const w = await writeInventory(this.o.file, text, this.shown);
      const added = this.prober ? await this.prober.recordKeys(this.targets(), this.answers.sshPort) : 0;
      this.out(
        `\nWrote ${this.shown}` +
          `\n${w.secretsCreated ? 'Wrote' : 'Kept'} ${secretsPathFor(this.shown)} (mode 0600${w.secretsCreated ? ', generated passwords' : ": its passwords are the cluster's"})` +
          (added ? `\nRecorded ${added} host key${added > 1 ? 's' : ''} in ${this.prober!.knownHosts}` : '') +
          `\nNext: hasetup apply ${this.shown}\n`,
      );
      return w;
    } finally {
      process.off('SIGINT', hold);
    }
  }
}

function nextFree(prev: string | undefined, others: NamedHost[]): string | undefined {
  return nextAddress(prev, others.map((o) => o.address!).filter(Boolean)) ?? undefined;
}
