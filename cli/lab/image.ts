// The cached parts of the lab: a Debian base image (the hosts' read-only lower layer) and a local
// apt repository with every package the roles install. Both come from the mirrors in this machine's
// own apt configuration, are built once into the cache directory and rebuilt when their package
// lists change (their directory names carry a hash of what they hold).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASE_PACKAGES, HOST_APT_SOURCE, REPO_PACKAGES, SUITE, type LabConfig } from './config.ts';
import { log, run, runOk } from './proc.ts';
import { withLock } from './state.ts';

export interface AptSource {
  uri: string;
  suite: string;
  components: string[];
}

/** Parses one-line sources.list text into deb entries (options such as signed-by dropped). */
export function parseOneLineSources(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    out.push({ uri: m[1], suite: m[2], components: m[3].split(/\s+/).filter(Boolean) });
  }
  return out;
}

/** Parses deb822 (.sources) text into deb entries; stanzas with Enabled: no are skipped. */
export function parseDeb822Sources(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let key = '';
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) continue;
      if (/^\s/.test(raw) && key) {
        fields.set(key, `${fields.get(key)} ${raw.trim()}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
      if (!m) continue;
      key = m[1].toLowerCase();
      fields.set(key, m[2].trim());
    }
    const words = (k: string) => (fields.get(k) ?? '').split(/\s+/).filter(Boolean);
    if (!words('types').includes('deb')) continue;
    if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
    for (const uri of words('uris')) for (const suite of words('suites')) out.push({ uri, suite, components: words('components') });
  }
  return out;
}

/**
 * The Debian mirrors this machine's apt uses, for the lab's suite: entries for bookworm and its
 * -updates/-security suites. On a machine of another Debian release, its own suites' mirrors are
 * used with the suite names changed to bookworm's.
 */
export function machineAptSources(etc = '/etc/apt'): AptSource[] {
  const all: AptSource[] = [];
  const main = join(etc, 'sources.list');
  if (existsSync(main)) all.push(...parseOneLineSources(readFileSync(main, 'utf8')));
  const partsDir = join(etc, 'sources.list.d');
  if (existsSync(partsDir)) {
    for (const f of readdirSync(partsDir).sort()) {
      const p = join(partsDir, f);
      if (f.endsWith('.list')) all.push(...parseOneLineSources(readFileSync(p, 'utf8')));
      else if (f.endsWith('.sources')) all.push(...parseDeb822Sources(readFileSync(p, 'utf8')));
    }
  }
  const suiteOf = (s: string) => s.replace(/[-/](updates|security)$/, '');
  let chosen = all.filter((s) => suiteOf(s.suite) === SUITE);
  if (chosen.length === 0) {
    const release = all.find((s) => /^[a-z]+$/.test(s.suite) && s.components.includes('main'));
    if (release) {
      chosen = all.filter((s) => suiteOf(s.suite) === release.suite).map((s) => ({ ...s, suite: s.suite.replace(release.suite, SUITE) }));
    }
  }
  const seen = new Set<string>();
  chosen = chosen
    .map((s) => ({ ...s, components: s.components.includes('main') ? ['main'] : [] }))
    .filter((s) => s.components.length > 0)
    .filter((s) => {
      const k = `${s.uri} ${s.suite}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  if (chosen.length === 0) {
    throw new Error(
      `no Debian ${SUITE} mirror (or any Debian release's "main") found in ${etc}/sources.list{,.d}: the lab takes its mirror from there`,
    );
  }
  return chosen;
}

export const sourcesListText = (sources: AptSource[]): string =>
  sources.map((s) => `deb ${s.uri} ${s.suite} ${s.components.join(' ')}`).join('\n') + '\n';

/**
 * The machine's apt settings that the base image build must share: validity checks and proxies
 * (apt-get on this machine reads them itself; mmdebstrap's apt does not).
 */
export async function machineAptOptions(): Promise<string> {
  const r = await run('apt-config', ['dump']);
  if (r.code !== 0) return '';
  return r.stdout
    .split('\n')
    .filter(
      (l) =>
        /^Acquire::(Check-Valid-Until|Check-Date|Retries|https?::Proxy|ftp::Proxy|https?::Timeout)\b/i.test(l) ||
        /^Acquire::https?::Proxy::/i.test(l),
    )
    .join('\n');
}

const hash = (x: unknown): string => createHash('sha256').update(JSON.stringify(x)).digest('hex').slice(0, 16);

export interface CacheKeys {
  base: string;
  repo: string;
}

export function cacheKeys(sources: AptSource[]): CacheKeys {
  const base = hash({ suite: SUITE, variant: 'minbase', packages: BASE_PACKAGES, sources, layout: 1 });
  const repo = hash({ base, packages: REPO_PACKAGES, layout: 1 });
  return { base, repo };
}

export const baseDirFor = (cfg: LabConfig, keys: CacheKeys): string => join(cfg.cacheDir, `base-${keys.base}`);
export const repoDirFor = (cfg: LabConfig, keys: CacheKeys): string => join(cfg.cacheDir, `repo-${keys.repo}`);

/** Makes the fresh root filesystem a lab host's lower layer: local repository, no host keys, no machine id. */
function customizeBase(root: string): void {
  writeFileSync(join(root, 'etc/apt/sources.list'), `${HOST_APT_SOURCE}\n`);
  const parts = join(root, 'etc/apt/sources.list.d');
  if (existsSync(parts)) for (const f of readdirSync(parts)) rmSync(join(parts, f), { force: true, recursive: true });
  const sshDir = join(root, 'etc/ssh');
  for (const f of readdirSync(sshDir)) if (f.startsWith('ssh_host_')) rmSync(join(sshDir, f));
  mkdirSync(join(sshDir, 'sshd_config.d'), { recursive: true });
  // each host gets its own ed25519 host key at `lab up`; no other type is generated
  writeFileSync(join(sshDir, 'sshd_config.d/hasetup-lab.conf'), 'HostKey /etc/ssh/ssh_host_ed25519_key\n');
  writeFileSync(join(root, 'etc/machine-id'), '');
  rmSync(join(root, 'var/lib/dbus/machine-id'), { force: true });
  rmSync(join(root, 'etc/hostname'), { force: true });
  // apt's daily timers would take the dpkg lock under a role's apt-get in the middle of a test
  for (const unit of ['apt-daily.timer', 'apt-daily-upgrade.timer']) {
    const link = join(root, 'etc/systemd/system', unit);
    rmSync(link, { force: true });
    symlinkSync('/dev/null', link);
  }
  writeFileSync(join(root, 'etc/hasetup-lab'), 'This root file system is a hasetup lab base image.\n');
}

/** The base image, built with mmdebstrap when the cache has none for the current package list. */
export async function ensureBaseImage(cfg: LabConfig, sources: AptSource[], keys: CacheKeys): Promise<string> {
  const dir = baseDirFor(cfg, keys);
  if (existsSync(join(dir, 'etc/hasetup-lab'))) return dir;
  mkdirSync(cfg.cacheDir, { recursive: true });
  return withLock(dir, 'the base image build', 15 * 60_000, async () => {
    if (existsSync(join(dir, 'etc/hasetup-lab'))) return dir;
    const t0 = Date.now();
    log(`building the ${SUITE} base image (mmdebstrap, once) into ${dir}`);
    const tmp = `${dir}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const sourcesFile = join(tmp, '..', `.sources-${keys.base}.list`);
    const optsFile = join(tmp, '..', `.apt-${keys.base}.conf`);
    writeFileSync(sourcesFile, sourcesListText(sources));
    writeFileSync(optsFile, (await machineAptOptions()) + '\n');
    try {
      await runOk('mmdebstrap', [
        '--variant=minbase',
        '--mode=root',
        '--format=directory',
        `--aptopt=${optsFile}`,
        `--include=${BASE_PACKAGES.join(',')}`,
        SUITE,
        join(tmp, 'root'),
        sourcesFile,
      ]);
      customizeBase(join(tmp, 'root'));
      renameSync(join(tmp, 'root'), dir);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
      rmSync(sourcesFile, { force: true });
      rmSync(optsFile, { force: true });
    }
    log(`base image built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return dir;
  });
}

/** Cache directories that a running lab host has mounted (any mount namespace on the machine). */
function cacheDirsInUse(cacheDir: string): Set<string> {
  const used = new Set<string>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
    } catch {
      continue;
    }
    for (const m of text.matchAll(new RegExp(`${cacheDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/((?:base|repo)-[0-9a-f]+)`, 'g')))
      used.add(m[1]);
  }
  return used;
}

/**
 * Removes base images and repositories of earlier package lists, except those still mounted by a
 * running lab.
 */
export function pruneCache(cfg: LabConfig, keys: CacheKeys): string[] {
  if (!existsSync(cfg.cacheDir)) return [];
  const keep = new Set([`base-${keys.base}`, `repo-${keys.repo}`]);
  // (one touched in the last hour may belong to another checkout's lab that is starting)
  const old = (d: string) => Date.now() - statSync(join(cfg.cacheDir, d)).mtimeMs > 3600_000;
  const stale = readdirSync(cfg.cacheDir).filter((d) => /^(base|repo)-[0-9a-f]+$/.test(d) && !keep.has(d) && old(d));
  if (stale.length === 0) return [];
  const used = cacheDirsInUse(cfg.cacheDir);
  const removed = stale.filter((d) => !used.has(d));
  for (const d of removed) rmSync(join(cfg.cacheDir, d), { recursive: true, force: true });
  if (removed.length) log(`removed cached ${removed.join(', ')} (earlier package lists)`);
  return removed;
}

/** A Release file for a flat repository, so that apt takes it without warnings. */
function releaseFile(repo: string): string {
  const lines = [
    `Origin: hasetup-lab`,
    `Label: hasetup-lab`,
    `Suite: ${SUITE}`,
    `Architectures: all ${process.arch === 'x64' ? 'amd64' : process.arch}`,
    `Date: ${new Date().toUTCString()}`,
  ];
  for (const [algo, name] of [
    ['md5', 'MD5Sum'],
    ['sha256', 'SHA256'],
  ] as const) {
    lines.push(`${name}:`);
    for (const f of ['Packages', 'Packages.gz']) {
      const data = readFileSync(join(repo, f));
      lines.push(` ${createHash(algo).update(data).digest('hex')} ${data.length} ${f}`);
    }
  }
  return lines.join('\n') + '\n';
}

/**
 * The local repository: apt-get --download-only of the roles' packages against the base image's
 * own dpkg status (so it holds exactly what a host lacks), then a Packages index.
 */
export async function ensureRepo(cfg: LabConfig, sources: AptSource[], keys: CacheKeys, baseDir: string): Promise<string> {
  const dir = repoDirFor(cfg, keys);
  if (existsSync(join(dir, 'Release'))) return dir;
  return withLock(dir, 'the local repository build', 15 * 60_000, async () => {
    if (existsSync(join(dir, 'Release'))) return dir;
    const t0 = Date.now();
    log(`building the local apt repository (${REPO_PACKAGES.length} packages and their dependencies) into ${dir}`);
    const tmp = `${dir}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    const work = join(tmp, 'work');
    const debs = join(tmp, 'repo');
    for (const d of [join(work, 'lists/partial'), join(work, 'archives/partial'), debs]) mkdirSync(d, { recursive: true });
    writeFileSync(join(work, 'sources.list'), sourcesListText(sources));
    const apt = [
      '-q',
      '-o',
      `Dir::State::status=${join(baseDir, 'var/lib/dpkg/status')}`,
      '-o',
      `Dir::Etc::SourceList=${join(work, 'sources.list')}`,
      '-o',
      `Dir::Etc::SourceParts=${join(work, 'no-parts')}`,
      '-o',
      `Dir::State::Lists=${join(work, 'lists')}`,
      '-o',
      `Dir::Cache::Archives=${join(work, 'archives')}`,
      '-o',
      'Dir::Cache::pkgcache=',
      '-o',
      'Dir::Cache::srcpkgcache=',
      '-o',
      'Debug::NoLocking=1',
    ];
    try {
      await runOk('apt-get', [...apt, 'update']);
      await runOk('apt-get', [...apt, '-y', 'install', '--download-only', ...REPO_PACKAGES], {
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
      for (const f of readdirSync(join(work, 'archives'))) {
        if (f.endsWith('.deb')) renameSync(join(work, 'archives', f), join(debs, f));
      }
      const count = readdirSync(debs).length;
      if (count === 0) throw new Error('apt-get downloaded no package for the local repository');
      const scan = await runOk('dpkg-scanpackages', ['--multiversion', '.', '/dev/null'], { cwd: debs });
      writeFileSync(join(debs, 'Packages'), scan.stdout);
      await runOk('sh', ['-c', 'gzip -9c Packages > Packages.gz'], { cwd: debs });
      writeFileSync(join(debs, 'Release'), releaseFile(debs));
      renameSync(debs, dir);
      const size = readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
      log(`local repository built: ${count} packages, ${(size / 1e6).toFixed(0)} MB, in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    return dir;
  });
}
