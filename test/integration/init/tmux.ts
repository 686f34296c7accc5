// A pseudo-terminal for driving the real wizard: a tmux server of the test's own (its own socket,
// no user config) running one command in a window of a fixed size. Keys go in with send-keys, the
// screen comes back with capture-pane. Waits are bounded; kill() ends the server and what it runs.
import { spawnSync } from 'node:child_process';

let seq = 0;

function tmux(socket: string, args: string[]): string {
  const r = spawnSync('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tmux ${args[0]}: ${r.stderr.trim() || r.error}`);
  return r.stdout;
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export class Pane {
  readonly socket = `hasetup-init-${process.pid}-${seq++}`;
  private alive = true;

  /** Starts `argv` (with env added) in cwd; when it ends, the pane shows EXIT=<its code> and stays. */
  constructor(argv: string[], opts: { cwd: string; env?: Record<string, string>; width?: number; height?: number }) {
    const env = Object.entries({ TERM: 'xterm-256color', ...opts.env }).map(([k, v]) => `${k}=${shq(v)}`);
    const cmd = `env ${env.join(' ')} ${argv.map(shq).join(' ')}; echo "EXIT=$?"; sleep 3600`;
    tmux(this.socket, [
      'new-session',
      '-d',
      '-x',
      String(opts.width ?? 160),
      '-y',
      String(opts.height ?? 60),
      '-s',
      'w',
      '-c',
      opts.cwd,
      cmd,
    ]);
  }

  /** The visible screen, wrapped lines joined. */
  screen(): string {
    return tmux(this.socket, ['capture-pane', '-p', '-J', '-t', 'w']);
  }

  /** Everything the pane showed, scrollback included. */
  history(): string {
    return tmux(this.socket, ['capture-pane', '-p', '-J', '-S', '-', '-t', 'w']);
  }

  /** Keys by tmux name (Enter, Down, C-c, C-u...). */
  keys(...keys: string[]): void {
    tmux(this.socket, ['send-keys', '-t', 'w', ...keys]);
  }

  /** Text typed as it is. */
  type(text: string): void {
    tmux(this.socket, ['send-keys', '-t', 'w', '-l', text]);
  }

  /** Waits until the screen matches; returns it. Throws with the screen after timeoutMs. */
  async waitFor(re: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.screen();
      if (re.test(s)) return s;
      if (Date.now() > deadline) throw new Error(`the screen did not show ${re} within ${timeoutMs} ms; it shows:\n${s}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Waits for the active prompt "? <message>" (answered ones show ✔), then types the answer and Enter. */
  async answer(message: string, text = '', timeoutMs?: number): Promise<void> {
    await this.waitFor(new RegExp(`^\\? ${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'), timeoutMs);
    if (text) this.type(text);
    this.keys('Enter');
  }

  /** Waits for the command to end; its exit code. */
  async exitCode(timeoutMs = 30_000): Promise<number> {
    const s = await this.waitFor(/^EXIT=\d+$/m, timeoutMs);
    return Number(/^EXIT=(\d+)$/m.exec(s)![1]);
  }

  kill(): void {
    if (!this.alive) return;
    this.alive = false;
    try {
      tmux(this.socket, ['kill-server']);
    } catch {}
  }
}
