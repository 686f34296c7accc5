// The reconnect check after a change that could cut the controller off (the firewall): a new
// connection must get through and confirm the change; if it cannot, the change's own rollback fires
// on the host by itself, and the old connection waits to see it.
import type { Transport } from './transport.ts';

export interface Confirm {
  /** sh run over the new connection: exits 0 to confirm the change (and disarm its rollback). */
  script: string;
  /** When the host rolls the change back by itself unless confirmed. */
  rollbackAfterSec: number;
  /** sh run over the old connection: exits 0 once the rollback happened. */
  rolledBack: string;
}

export interface ReconnectTiming {
  /** How long past rollbackAfterSec the rollback may take to be seen (default 15 s). */
  graceSec?: number;
  /** How often the old connection asks whether it rolled back (default 1 s). */
  pollMs?: number;
}

/** null when a new connection confirmed the change; otherwise why the task fails. */
export async function confirmByReconnect(
  connect: () => Promise<Transport>,
  old: Transport,
  c: Confirm,
  timing: ReconnectTiming = {},
): Promise<string | null> {
  const graceSec = timing.graceSec ?? 15;
  let why: string;
  try {
    const t2 = await connect();
    try {
      const r = await t2.exec(c.script);
      if (r.code === 0) return null;
      why = `confirmation failed: ${r.stderr.trim()}`;
    } finally {
      await t2.close();
    }
  } catch (e) {
    why = (e as Error).message;
  }
  // Cut off: the rollback armed by the change fires by itself; wait for it on the old session.
  const rolledBack = await waitRolledBack(old, c.rolledBack, (c.rollbackAfterSec + graceSec) * 1000, timing.pollMs ?? 1000);
  return rolledBack
    ? `the change cut new SSH connections from the controller (${why}): rolled back by the host itself`
    : `the change cut new SSH connections from the controller (${why}) and the rollback was not seen within ${c.rollbackAfterSec + graceSec}s`;
}

async function waitRolledBack(t: Transport, rolledBack: string, withinMs: number, pollMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    const r = await t.exec(rolledBack).catch(() => ({ code: 1 }));
    if (r.code === 0) return true;
    await new Promise((res) => setTimeout(res, pollMs));
  }
  return false;
}
