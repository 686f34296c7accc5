// The Vagrant lab's packages: the VMs' networks reach nothing outside the lab, so they install from
// the same local apt repository as the nspawn lab (built once from this machine's own apt mirrors,
// cli/lab/image.ts), served over HTTP by a small server on this machine's address on the lab network.
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { loadInventory } from '../../inventory/load.ts';
import { connectHost } from '../connect.ts';
import { labConfig } from './config.ts';
import { cacheKeys, ensureBaseImage, ensureRepo, machineAptSources } from './image.ts';

export const REPO_PORT = 8780;

/** A static file server for one folder, as node -e code: argv = folder, address, port. */
const SERVER = `
const http = require('node:http'), fs = require('node:fs'), path = require('node:path');
const [dir, host, port] = process.argv.slice(1);
http.createServer((req, res) => {
  const rel = decodeURIComponent((req.url || '/').split('?')[0]).replace(/^\\/+/, '');
  const file = path.join(dir, rel);
  if (rel.includes('..') || !file.startsWith(dir)) { res.writeHead(403); return res.end(); }
  fs.stat(file, (err, st) => {
    if (err || !st.isFile()) { res.writeHead(404); return res.end(); }
    res.writeHead(200, { 'content-length': st.size });
    if (req.method === 'HEAD') return res.end();
    fs.createReadStream(file).pipe(res);
  });
}).listen(Number(port), host);
`;

function answers(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host, port }, () => (s.destroy(), res(true)));
    s.on('error', () => res(false));
  });
}

/**
 * Builds (once, cached) the lab's repository and serves it on `host`:REPO_PORT from a detached
 * process; returns that process, for `down` to stop.
 */
export async function serveRepo(host: string, log: (m: string) => void): Promise<{ name: string; pid: number; url: string }> {
  const cfg = labConfig();
  const sources = machineAptSources();
  const keys = cacheKeys(sources);
  const base = await ensureBaseImage(cfg, sources, keys);
  const repo = await ensureRepo(cfg, sources, keys, base);
  const url = `http://${host}:${REPO_PORT}/`;
  const child = spawn(process.execPath, ['-e', SERVER, repo, host, String(REPO_PORT)], { detached: true, stdio: 'ignore' });
  child.unref();
  for (let i = 0; i < 100; i++) {
    if (await answers(host, REPO_PORT)) {
      log(`vagrant lab: the local apt repository ${repo} is served at ${url}`);
      return { name: 'node', pid: child.pid as number, url };
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    process.kill(child.pid as number);
  } catch {}
  throw new Error(`the local apt repository could not be served at ${url} (is the port taken?)`);
}

/** Every VM of the inventory installs from the lab's repository only (as the nspawn lab's hosts do). */
export async function pointVmsAtRepo(inventory: string, url: string): Promise<void> {
  const inv = await loadInventory(inventory);
  await Promise.all(
    inv.hosts.map(async (h) => {
      const t = await connectHost(inv, h);
      try {
        const r = await t.exec(
          `printf '%s\\n' 'deb [trusted=yes] ${url} ./' > /etc/apt/sources.list && rm -f /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources && apt-get -q update >/tmp/hasetup-apt-update.log 2>&1 || { tail -n 5 /tmp/hasetup-apt-update.log; exit 1; }`,
        );
        if (r.code !== 0) throw new Error(`${h.name}: apt-get update from ${url} failed: ${(r.stdout + r.stderr).trim()}`);
      } finally {
        await t.close();
      }
    }),
  );
}
