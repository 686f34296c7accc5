// The firewall's own operation: one nftables table of hasetup's (inet hasetup), loaded atomically
// with a rollback that the host fires by itself unless hasetup confirms the change by reconnecting.
import { createHash } from 'node:crypto';
import type { Operation } from '../../cli/engine/api.ts';

/** The table's comment carries a hash of its rules: the probe compares it with the wanted one. */
export function withHash(rules: string): { text: string; hash: string } {
  const hash = createHash('sha256').update(rules).digest('hex').slice(0, 16);
  return { text: rules.replace('@@HASH@@', hash), hash };
}

/** Loads a ruleset with a self-firing rollback, confirmed by hasetup's reconnect. */
export function nftRuleset(spec: { content: string; hash: string; rollbackAfterSec: number; stateDir: string }): Operation {
  const d = spec.stateDir;
  return {
    kind: 'nftables',
    subject: 'table inet hasetup',
    probe: () =>
      `nft list table inet hasetup 2>/dev/null | grep -o 'hasetup:[0-9a-f]*' | head -n1; echo; ` +
      `grep -o 'hasetup:[0-9a-f]*' /etc/nftables.conf 2>/dev/null | head -n1`,
    plan(state) {
      const [live = '', , persisted = ''] = state.split('\n').map((l) => l.trim());
      const want = `hasetup:${spec.hash}`;
      if (live === want && persisted === want) return { changed: false };
      const why = live === want ? 'persist the loaded rules in /etc/nftables.conf' : live ? 'rules differ' : 'no hasetup table loaded';
      const rollback = [
        `nft delete table inet hasetup 2>/dev/null`,
        `[ -s ${d}/before.nft ] && nft -f ${d}/before.nft`,
        `if [ -f ${d}/nftables.conf.before ]; then cp -p ${d}/nftables.conf.before /etc/nftables.conf; fi`,
        `touch ${d}/rolled-back`,
      ].join('\n');
      const script = [
        'set -e',
        `mkdir -p ${d}`,
        `cat > ${d}/new.nft`,
        `nft -c -f ${d}/new.nft || { echo "nftables rejected the new rules"; exit 3; }`,
        `nft list table inet hasetup > ${d}/before.nft 2>/dev/null || : > ${d}/before.nft`,
        `if [ -f /etc/nftables.conf ]; then cp -p /etc/nftables.conf ${d}/nftables.conf.before; else rm -f ${d}/nftables.conf.before; fi`,
        `cat > ${d}/rollback.sh <<'HASETUP_RB'\n${rollback}\nHASETUP_RB`,
        `rm -f ${d}/rolled-back`,
        `systemctl stop hasetup-fw-rollback.timer hasetup-fw-rollback.service 2>/dev/null || true`,
        `systemctl reset-failed hasetup-fw-rollback.service hasetup-fw-rollback.timer 2>/dev/null || true`,
        `systemd-run --quiet --unit hasetup-fw-rollback --timer-property=AccuracySec=1s --on-active=${spec.rollbackAfterSec}s /bin/sh ${d}/rollback.sh`,
        `nft -f ${d}/new.nft`,
        `cp ${d}/new.nft /etc/nftables.conf.hasetup-tmp && chmod 0755 /etc/nftables.conf.hasetup-tmp && mv -f /etc/nftables.conf.hasetup-tmp /etc/nftables.conf`,
      ].join('\n');
      return {
        changed: true,
        script,
        stdin: spec.content,
        why,
        diff: `nftables: load table inet hasetup (${want})\n${spec.content}`,
        confirm: {
          script: `systemctl stop hasetup-fw-rollback.timer 2>/dev/null; [ ! -e ${d}/rolled-back ] || { echo 'the rollback already fired'; exit 1; }`,
          rollbackAfterSec: spec.rollbackAfterSec,
          rolledBack: `[ -e ${d}/rolled-back ]`,
        },
      };
    },
  };
}
