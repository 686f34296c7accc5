// What a deploy does on one web node, as sh scripts (one SSH round trip each): read its releases and
// the checksums of the files `current` serves; stage a new release (a copy of the current one made of
// hard links, the changed files from a tar on stdin, every checksum verified, then renamed into
// place); switch `current` atomically and reload PHP-FPM; ask the node's own entry page; prune.
import { shq } from '../engine/shell.ts';
import { CURRENT, FPM_UNIT, RELEASES_DIR } from '../../roles/index.ts';
import type { Manifest, ManifestFile } from './manifest.ts';

export interface NodeState {
  /** The release `current` points at (its folder name), or null. */
  current: string | null;
  /** Every release folder, oldest first (names sort by time). */
  releases: string[];
  /** The files of the current release: path -> sha256. */
  files: Map<string, string>;
  /** PHP-FPM runs (a reload is part of the switch). */
  php: boolean;
}

const MARK = '__HASETUP_DEPLOY__';

/** Prints the node's releases, `current`, and the checksum of every file `current` serves. */
export function probeScript(): string {
  const r = shq(RELEASES_DIR);
  const c = shq(CURRENT);
  return [
    `echo "${MARK} current $(readlink ${c} 2>/dev/null)"`,
    `if [ -d ${r} ]; then for d in ${r}/*/; do [ -d "$d" ] && echo "${MARK} release $(basename "$d")"; done; fi`,
    `systemctl is-active -q ${FPM_UNIT} && echo "${MARK} php"`,
    `if [ -d ${c}/ ]; then cd -P ${c} && find . -type f -print0 | xargs -0r sha256sum; fi`,
    'true',
  ].join('\n');
}

export function parseProbe(out: string): NodeState {
  const s: NodeState = { current: null, releases: [], files: new Map(), php: false };
  for (const line of out.split('\n')) {
    if (line.startsWith(`${MARK} current `)) {
      const target = line.slice(`${MARK} current `.length).trim();
      s.current = target ? (target.split('/').pop() ?? null) : null;
    } else if (line.startsWith(`${MARK} release `)) s.releases.push(line.slice(`${MARK} release `.length).trim());
    else if (line === `${MARK} php`) s.php = true;
    else {
      const m = /^([0-9a-f]{64}) [ *]\.\/(.*)$/.exec(line);
      if (m) s.files.set(m[2], m[1]);
    }
  }
  s.releases.sort();
  return s;
}

/** A release's folder name: its UTC time (to the millisecond, so names sort by age) and the site's hash. */
export function releaseName(hash: string, at: Date): string {
  const t = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.(\d{3})Z$/, '$1Z');
  return `${t}-${hash.slice(0, 12)}`;
}

/**
 * Stages `name` from `base` (the current release, when there is one): hard links of its files, the
 * removed files taken out, the changed ones extracted from the tar on stdin, every file checked
 * against the site's manifest, files 0644 and folders 0755 owned by root (the PHP pool's user may
 * read the site, never change it), then renamed into place in one step.
 */
export function stageScript(name: string, base: string | null, site: Manifest, send: ManifestFile[], remove: string[]): string {
  const r = RELEASES_DIR;
  const tmp = shq(`${r}/.staging-${name}`);
  const dest = shq(`${r}/${name}`);
  const manifest = site.files.map((f) => `${f.sha256}  ./${f.path}`).join('\n');
  const lines = [
    'set -e',
    `mkdir -p ${shq(r)}`,
    `rm -rf ${tmp}`,
    `mkdir ${tmp}`,
    `trap 'rm -rf ${tmp}' EXIT`,
    base ? `cp -al ${shq(`${r}/${base}`)}/. ${tmp}/` : ':',
    // a hard link is never written through: the old release keeps its file
    ...chunk([...remove, ...send.map((f) => f.path)], 200).map((ps) => `cd ${tmp} && rm -f -- ${ps.map((p) => shq(`./${p}`)).join(' ')}`),
    send.length ? `tar -x --no-same-owner --no-same-permissions -C ${tmp} -f -` : ':',
    `cd ${tmp}`,
    `sha256sum -c --quiet --strict <<'HASETUP_MANIFEST' || { echo 'the release does not match the site: a file arrived damaged' >&2; exit 3; }`,
    manifest,
    'HASETUP_MANIFEST',
    `chown -R root:root ${tmp}`,
    `find ${tmp} -type d -exec chmod 0755 {} +`,
    `find ${tmp} -type f -exec chmod 0644 {} +`,
    `cd /`,
    `if [ -e ${dest} ]; then rm -rf ${dest}; fi`,
    `mv -T ${tmp} ${dest}`,
    'trap - EXIT',
  ];
  return lines.join('\n');
}

function chunk<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/** Points `current` at `name` in one rename, then reloads PHP-FPM (opcache and the realpath cache start empty). */
export function switchScript(name: string, php: boolean): string {
  const c = CURRENT;
  return [
    'set -e',
    `[ -d ${shq(`${RELEASES_DIR}/${name}`)} ]`,
    `ln -sfn ${shq(`releases/${name}`)} ${shq(`${c}.hasetup-new`)}`,
    `mv -fT ${shq(`${c}.hasetup-new`)} ${shq(c)}`,
    php ? `systemctl reload ${FPM_UNIT}` : ':',
  ].join('\n');
}

/**
 * Asks the node's entry page on its own loopback (the release's PHP runs: a syntax error answers
 * 500) until it answers 2xx or 3xx, at most `seconds`; prints the status, and on a failure the end of
 * the PHP error log.
 */
export function checkScript(seconds: number, errorLog: string): string {
  return [
    'i=0',
    'while :; do',
    `  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'User-Agent: hasetup-deploy' http://127.0.0.1/ || true)`,
    '  case "$code" in 2??|3??) echo "$code"; exit 0;; esac',
    '  i=$((i + 1))',
    `  if [ $i -ge ${seconds * 4} ]; then echo "$code"; tail -n 3 ${shq(errorLog)} 2>/dev/null | cut -c1-300 >&2; exit 1; fi`,
    '  sleep 0.25',
    'done',
  ].join('\n');
}

/** Removes the oldest releases beyond `keep`, never the current one. */
export function pruneScript(state: { releases: string[] }, current: string, keep: number): { script: string; removed: string[] } {
  const others = state.releases.filter((r) => r !== current);
  const removed = others.slice(0, Math.max(0, others.length - (keep - 1)));
  return {
    removed,
    script: removed.length ? `rm -rf -- ${removed.map((r) => shq(`${RELEASES_DIR}/${r}`)).join(' ')}` : ':',
  };
}
