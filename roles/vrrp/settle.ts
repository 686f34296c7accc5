// An apply ends on a settled VRRP tier: the LB the inventory prefers (the highest priority) holds the
// VIP and the other is BACKUP. The preferred LB starts its VRRP daemon first and its peer only once it
// holds the VIP (so that a fresh cluster's VIP never lands on the other LB first); and wherever this
// LB's daemon runs but the VIP is not on it yet (it just started, or a restart of the runtime handed
// the VIP to the peer, which it takes back after its preempt_delay), the apply waits for it, bounded,
// and says how long it waited, or why it did not settle.
import { PlanError, shq, type Host, type Inventory, type Operation, type Serial } from '../../cli/engine/api.ts';
import { holdsVip } from '../lb.ts';

/** The LB of the highest priority, when exactly one has it. */
export function preferredLb(lbs: Host[]): Host | null {
  const top = Math.max(...lbs.map((h) => h.priority ?? 0));
  const at = lbs.filter((h) => (h.priority ?? 0) === top);
  return at.length === 1 ? at[0] : null;
}

/** The preferred LB's turn comes first (rank 0), its peers' after it (rank 1). */
export const preferredFirst = (host: Host, lbs: Host[]): Serial => ({
  group: 'lb',
  rank: `echo ${preferredLb(lbs)?.name === host.name ? 0 : 1}`,
});

/**
 * The VRRP tier settled, as seen from this LB. On the preferred LB, while its VRRP daemon runs, the
 * probe waits (at most `seconds`) until the VIP is on it; elsewhere it only reads. The probe prints
 * "inactive", or "holds|free WAITED_MS" (0: no wait) and the daemon's last transition (the journal line every
 * transition writes, for both engines: INSTANCE VI_51 BACKUP 90).
 */
export function vrrpSettled(inv: Inventory, host: Host, lbs: Host[], unit: string, seconds: number): Operation {
  const preferred = preferredLb(lbs);
  const mine = preferred?.name === host.name;
  const u = shq(`${unit}.service`);
  return {
    kind: 'vrrp-settled',
    subject: preferred ? `the VIP on ${preferred.name}` : 'VRRP',
    probe: () =>
      [
        `if systemctl is-active -q ${u}; then`,
        `  s=$(date +%s%N)`,
        mine ? `  i=0; until ${holdsVip(inv)} || [ $i -ge ${seconds * 10} ]; do i=$((i+1)); sleep 0.1; done` : '  i=0',
        `  if ${holdsVip(inv)}; then h=holds; else h=free; fi`,
        // waited: 0 when the VIP was there at once
        `  if [ $i -eq 0 ]; then echo "$h 0"; else echo "$h $(( ($(date +%s%N) - s) / 1000000 ))"; fi`,
        `  journalctl -t hasetup-vrrp -n 1 -o cat --no-pager 2>/dev/null | tail -n 1`,
        `else echo inactive; fi`,
      ].join('\n'),
    plan(state) {
      const [first = '', last = ''] = state.trim().split('\n');
      const [what = '', ms = '0'] = first.trim().split(/\s+/);
      if (what === 'inactive' || what === '') return { changed: false, note: `${unit} not running` };
      const seen = last.trim() ? ` (last transition: ${last.trim()})` : '';
      if (!preferred) return { changed: false, note: `${what === 'holds' ? 'holds the VIP' : 'does not hold the VIP'}${seen}` };
      if (mine) {
        // a wait is said (as a change: this run's earlier changes made it necessary)
        if (what === 'holds')
          return Number(ms) > 0
            ? {
                changed: true,
                script: 'true',
                why: `${host.name} holds the VIP after waiting ${(Number(ms) / 1000).toFixed(1)} s for VRRP to settle`,
              }
            : { changed: false, note: 'holds the VIP, as the preferred master' };
        throw new PlanError(
          `${host.name} (priority ${host.priority}, the preferred master) did not take the VIP within ${seconds} s${seen}: ` +
            `its proxy may not serve (the VRRP tracker lowers its priority while it does not), or its adverts do not reach the peer; see \`hasetup status\``,
        );
      }
      return { changed: false, note: what === 'holds' ? `holds the VIP for now (${preferred.name} preferred)${seen}` : `BACKUP${seen}` };
    },
  };
}
