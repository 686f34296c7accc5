// How many PHP requests a web node runs at once (the pool's pm.max_children), sized from the memory
// the host really has (its facts). A PHP-FPM child is a whole interpreter: the request's memory, the
// extensions, its share of what it touched; opcache's shared memory is counted once, in the reserve.
//
//   reserve       = max(256 MB, 25% of memory)     the same reserve as Apache's (roles/apache/sizing.ts):
//                                                  the OS, page cache, sshd, logs, opcache
//   for PHP       = (memory - reserve) x 1/2       the other half is Apache's event MPM (threads that
//                                                  wait on PHP cost far less than a child each)
//   max_children  = clamp(floor(for PHP / 40 MB), 2, Apache's MaxRequestWorkers)
//
// 40 MB per child is the figure to change (PHP_SIZING.perChildMb): a small PHP 8.2 application stays
// around 20-30 MB resident per child; a framework with big requests needs more, and then
// roles.app.php.max_children overrides the whole formula.
// e.g. 1 GB: (1024 - 256) / 2 / 40 = 9 children; 512 MB: 3; 256 MB or less: the floor, 2;
// 4 GB: (4096 - 1024) / 2 / 40 = 38.
import { SIZING as APACHE } from '../apache/sizing.ts';

export const PHP_SIZING = {
  /** Resident memory of one PHP-FPM child (MB): the one figure of the formula. */
  perChildMb: 40,
  /** The share of (memory - reserve) given to PHP. */
  phpShare: 0.5,
  minChildren: 2,
} as const;

export interface PhpSizing {
  maxChildren: number;
  startServers: number;
  minSpareServers: number;
  maxSpareServers: number;
  /** A child is replaced after this many requests (a leak in the application stays bounded). */
  maxRequests: number;
  /** One line saying where the numbers come from (written into the pool file and reported). */
  explain: string;
}

/**
 * The pool's size for a host of `memoryMb` (what its facts say it has), or the inventory's number;
 * never more children than Apache can send requests to them (`apacheWorkers`).
 */
export function phpSizing(memoryMb: number, setting: number | 'auto', apacheWorkers: number): PhpSizing {
  if (setting !== 'auto') {
    if (!Number.isInteger(setting) || setting < 1)
      throw new Error(`roles.app.php.max_children must be a positive integer or "auto", got ${setting}`);
    return finish(setting, `max_children = ${setting} from the inventory`);
  }
  const mem = Math.max(0, Math.floor(memoryMb));
  const reserve = Math.max(APACHE.reserveMinMb, Math.round(mem * APACHE.reserveShare));
  const forPhp = Math.floor(Math.max(0, mem - reserve) * PHP_SIZING.phpShare);
  const byMemory = Math.floor(forPhp / PHP_SIZING.perChildMb);
  const cap = Math.max(PHP_SIZING.minChildren, apacheWorkers);
  const n = Math.max(PHP_SIZING.minChildren, Math.min(byMemory, cap));
  const why =
    `(memory ${mem} MB - reserve ${reserve} MB) x ${PHP_SIZING.phpShare} = ${forPhp} MB / ${PHP_SIZING.perChildMb} MB per child = ${byMemory}` +
    (byMemory > cap ? `, capped at Apache's MaxRequestWorkers ${cap}` : '') +
    (byMemory < PHP_SIZING.minChildren ? `, raised to the floor of ${PHP_SIZING.minChildren}` : '');
  return finish(n, why);
}

function finish(n: number, why: string): PhpSizing {
  // pm = dynamic: FPM wants min_spare <= start <= max_spare <= max_children
  const minSpare = Math.min(n, 2);
  const maxSpare = Math.min(n, Math.max(minSpare, Math.min(16, Math.ceil(n / 4))));
  const start = Math.min(maxSpare, Math.max(minSpare, 4));
  return {
    maxChildren: n,
    startServers: start,
    minSpareServers: minSpare,
    maxSpareServers: maxSpare,
    maxRequests: 1000,
    explain: `pm.max_children ${n}: ${why}`,
  };
}
