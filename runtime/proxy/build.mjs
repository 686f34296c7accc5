// Builds the proxy's native part (native/reuseport.c, a Node-API addon that opens SO_REUSEPORT
// listening sockets, one per worker): dist/runtime/proxy-linux-<arch>.node, see scripts/native.mjs.
// Without it the proxy still runs; its workers then share one listening socket per address.
import { fileURLToPath } from 'node:url';
import { buildAddon } from '../../scripts/native.mjs';

export default async function buildProxy({ root }) {
  await buildAddon({ root, name: 'proxy', src: 'runtime/proxy/native/reuseport.c', hook: fileURLToPath(import.meta.url) });
}
