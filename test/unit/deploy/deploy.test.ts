// The deploy's pieces: the site's manifest and what differs on a node, the tar a node extracts, the
// node's probe read back, release names and pruning.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { difference, readManifest, SiteError } from '../../../cli/deploy/manifest.ts';
import { tar } from '../../../cli/deploy/tar.ts';
import { parseProbe, pruneScript, releaseName } from '../../../cli/deploy/node.ts';
import { previous } from '../../../cli/deploy/run.ts';

const work = mkdtempSync(join(tmpdir(), 'hasetup-deploy-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('manifest: every file with its checksum, .git left out; one changed file is the only one to send', async () => {
  const site = join(work, 'site');
  mkdirSync(join(site, 'lib'), { recursive: true });
  mkdirSync(join(site, '.git'));
  writeFileSync(join(site, 'index.php'), '<?php echo 1;');
  writeFileSync(join(site, 'lib', 'a.php'), '<?php');
  writeFileSync(join(site, '.git', 'HEAD'), 'x');
  const m = await readManifest(site);
  assert.deepEqual(
    m.files.map((f) => f.path),
    ['index.php', 'lib/a.php'],
  );
  const node = new Map(m.files.map((f) => [f.path, f.sha256]));
  node.set('old.php', 'f'.repeat(64));
  writeFileSync(join(site, 'index.php'), '<?php echo 2;');
  const m2 = await readManifest(site);
  assert.notEqual(m2.hash, m.hash);
  const d = difference(m2, node);
  assert.deepEqual(
    d.send.map((f) => f.path),
    ['index.php'],
  );
  assert.deepEqual(d.remove, ['old.php']);
  symlinkSync('index.php', join(site, 'link.php'));
  await assert.rejects(readManifest(site), (e: Error) => e instanceof SiteError && /link\.php: a symbolic link/.test(e.message));
});

test('tar: GNU tar extracts the files, long paths included', () => {
  const long = `${'d'.repeat(90)}/${'e'.repeat(90)}/file.php`;
  const archive = tar([
    { path: 'index.php', content: Buffer.from('<?php echo 1;\n') },
    { path: long, content: Buffer.alloc(1000, 65) },
  ]);
  const dest = mkdtempSync(join(work, 'x-'));
  const r = spawnSync('tar', ['-x', '-C', dest, '-f', '-'], { input: archive });
  assert.equal(r.status, 0, String(r.stderr));
  assert.equal(readFileSync(join(dest, 'index.php'), 'utf8'), '<?php echo 1;\n');
  assert.equal(readFileSync(join(dest, long)).length, 1000);
  assert.throws(() => tar([{ path: 'x'.repeat(300), content: Buffer.alloc(1) }]), /too long/);
});

test('probe: current, releases oldest first, checksums; the release before the current one; pruning keeps N', () => {
  const out = [
    '__HASETUP_DEPLOY__ current releases/20261205T100000000Z-bbbbbbbbbbbb',
    '__HASETUP_DEPLOY__ release 20261205T100000000Z-bbbbbbbbbbbb',
    '__HASETUP_DEPLOY__ release 20261205T090000000Z-aaaaaaaaaaaa',
    '__HASETUP_DEPLOY__ php',
    `${'a'.repeat(64)}  ./index.php`,
    `${'b'.repeat(64)}  ./lib/x y.php`,
  ].join('\n');
  const st = parseProbe(out);
  assert.equal(st.current, '20261205T100000000Z-bbbbbbbbbbbb');
  assert.deepEqual(st.releases, ['20261205T090000000Z-aaaaaaaaaaaa', '20261205T100000000Z-bbbbbbbbbbbb']);
  assert.equal(st.php, true);
  assert.equal(st.files.get('lib/x y.php'), 'b'.repeat(64));
  assert.equal(previous(st), '20261205T090000000Z-aaaaaaaaaaaa');
  assert.equal(previous({ ...st, releases: [st.current!] }), null);
  assert.equal(releaseName('c'.repeat(64), new Date('2026-12-05T10:11:12.345Z')), '20261205T101112345Z-cccccccccccc');
  const p = pruneScript({ releases: ['a', 'b', 'c', 'd'] }, 'd', 3);
  assert.deepEqual(p.removed, ['a']);
  assert.deepEqual(pruneScript({ releases: ['a', 'b', 'c', 'd'] }, 'b', 2).removed, ['a', 'c']);
});
