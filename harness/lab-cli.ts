// A lab of a test file's own, driven through the real CLI (`hasetup lab up|down|exec`), under its
// own lab name so that it never meets another lab on this machine.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSecrets } from '../inventory/secrets.ts';

export const REPO = fileURLToPath(new URL('..', import.meta.url));

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export function runCmd(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 900_000): Promise<Run> {
  const start = Date.now();
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', rej);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code: code ?? 255, stdout, stderr, ms: Date.now() - start });
    });
  });
}

export class TestLab {
  readonly dir = mkdtempSync(join(tmpdir(), 'hasetup-e2e-'));
  readonly inventory = join(this.dir, 'inventory.yaml');
  readonly env: NodeJS.ProcessEnv;
  constructor(readonly name: string) {
    this.env = { HASETUP_LAB_NAME: name, CI: process.env.CI ?? '', NO_COLOR: '1' };
  }
  /** The network namespace of a lab host, for tests that act from outside the host. */
  netns(host: string): string {
    return `hsl-${this.name}-${host}`;
  }
  hasetup(args: string[]): Promise<Run> {
    return runCmd(process.execPath, [join(REPO, 'bin/hasetup.js'), ...args], this.env);
  }
  /** Runs a command in the lab's controller namespace. */
  exec(args: string[]): Promise<Run> {
    return this.hasetup(['lab', 'exec', '--', ...args]);
  }
  /** The lab's inventory with `runtime: ENGINE`, beside it, sharing its secrets (generated now when missing). */
  async inventoryFor(engine: string): Promise<string> {
    await loadSecrets(this.inventory);
    const file = this.inventory.replace(/\.yaml$/, `-${engine}.yaml`);
    writeFileSync(file, readFileSync(this.inventory, 'utf8').replace(/^(cluster: .*\n)/m, `$1runtime: ${engine}\n`));
    copyFileSync(this.inventory.replace(/\.yaml$/, '.secrets.yaml'), file.replace(/\.yaml$/, '.secrets.yaml'));
    return file;
  }
  apply(args: string[] = [], inventory = this.inventory): Promise<Run> {
    return this.exec([process.execPath, join(REPO, 'bin/hasetup.js'), 'apply', inventory, ...args]);
  }
  ssh(host: string, command: string): Promise<Run> {
    return this.hasetup(['lab', 'ssh', host, '--', command]);
  }
  async up(extra: string[] = []): Promise<void> {
    const r = await this.hasetup(['lab', 'up', '--inventory', this.inventory, ...extra]);
    if (r.code !== 0) throw new Error(`lab up failed (${r.code}): ${r.stdout}\n${r.stderr}`);
  }
  async down(): Promise<void> {
    const r = await this.hasetup(['lab', 'down']);
    rmSync(this.dir, { recursive: true, force: true });
    if (r.code !== 0) throw new Error(`lab down failed (${r.code}): ${r.stdout}\n${r.stderr}`);
  }
}
