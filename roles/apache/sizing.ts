// How many requests Apache serves at once (MaxRequestWorkers), sized from the host's memory.
//
// The seed's pain was "MaxClients reached": prefork with one process per request, each holding a
// PHP interpreter, and a MaxClients picked by hand. This role runs the event MPM (threads; idle
// keep-alive connections wait on the listener thread instead of holding a worker), so a worker is
// a thread, and memory is spent per child process of ThreadsPerChild threads:
//
//   reserve    = max(256 MB, 25% of memory)          the OS, page cache, sshd, logs, the agentless engine
//   children   = floor((memory - reserve) / 32 MB)   a child of 25 threads serving static pages and the
//                                                    health URL stays well under 32 MB resident
//   cap        = ceil(proxy maxconn / 25)            never more workers than the LBs can send at once
//   ServerLimit       = clamp(children, 2, cap)      (at least two children: one may be recycling)
//   MaxRequestWorkers = ServerLimit * 25
//
// e.g. 1 GB: (1024 - 256) / 32 = 24 children = 600 workers; 512 MB: (512 - 256) / 32 = 8 = 200;
// 256 MB or less: the floor, 2 children = 50 workers; 16 GB with maxconn 4096: cap 164 = 4100.
// A number in the inventory (roles.apache.workers) overrides it: ThreadsPerChild = min(25, n),
// ServerLimit = ceil(n / ThreadsPerChild), MaxRequestWorkers rounded up to whole children (Apache
// itself would round it down to a multiple of ThreadsPerChild).

export const SIZING = {
  threadsPerChild: 25,
  reserveMinMb: 256,
  reserveShare: 0.25,
  perChildMb: 32,
  minChildren: 2,
} as const;

export interface MpmSizing {
  serverLimit: number;
  threadsPerChild: number;
  maxRequestWorkers: number;
  startServers: number;
  minSpareThreads: number;
  maxSpareThreads: number;
  /** One line saying where the numbers come from (written into the config file and reported). */
  explain: string;
}

export function mpmSizing(memoryMb: number, workers: number | 'auto', proxyMaxconn: number): MpmSizing {
  if (workers !== 'auto') {
    if (!Number.isInteger(workers) || workers < 1)
      throw new Error(`roles.apache.workers must be a positive integer or "auto", got ${workers}`);
    const tpc = Math.min(SIZING.threadsPerChild, workers);
    const serverLimit = Math.ceil(workers / tpc);
    return finish(
      serverLimit,
      tpc,
      `workers = ${workers} from the inventory${serverLimit * tpc !== workers ? ` (rounded up to ${serverLimit} children of ${tpc} threads)` : ''}`,
    );
  }
  const tpc = SIZING.threadsPerChild;
  const mem = Math.max(0, Math.floor(memoryMb));
  const reserve = Math.max(SIZING.reserveMinMb, Math.round(mem * SIZING.reserveShare));
  const byMemory = Math.floor(Math.max(0, mem - reserve) / SIZING.perChildMb);
  const cap = Math.max(SIZING.minChildren, Math.ceil(proxyMaxconn / tpc));
  const serverLimit = Math.max(SIZING.minChildren, Math.min(byMemory, cap));
  const why =
    `memory ${mem} MB - reserve ${reserve} MB = ${Math.max(0, mem - reserve)} MB / ${SIZING.perChildMb} MB per child = ${byMemory} children` +
    (byMemory > cap ? `, capped at ceil(proxy maxconn ${proxyMaxconn} / ${tpc}) = ${cap}` : '') +
    (byMemory < SIZING.minChildren ? `, raised to the floor of ${SIZING.minChildren}` : '') +
    ` -> ${serverLimit} x ${tpc} threads`;
  return finish(serverLimit, tpc, why);
}

function finish(serverLimit: number, tpc: number, why: string): MpmSizing {
  return {
    serverLimit,
    threadsPerChild: tpc,
    maxRequestWorkers: serverLimit * tpc,
    startServers: Math.min(2, serverLimit),
    minSpareThreads: tpc,
    // Apache wants MaxSpareThreads >= MinSpareThreads + ThreadsPerChild
    maxSpareThreads: 3 * tpc,
    explain: `MaxRequestWorkers ${serverLimit * tpc}: ${why}`,
  };
}
