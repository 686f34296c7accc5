// Builds the vrrpd native part (native/vrrpnet.c, a Node-API addon for raw IPv4 and AF_PACKET
// sockets): dist/runtime/vrrpd-linux-<arch>.node, see scripts/native.mjs. hasetup-vrrpd refuses to
// start without it and its tests fail, saying what is missing.
import { fileURLToPath } from 'node:url';
import { buildAddon } from '../../scripts/native.mjs';

export default async function buildVrrpd({ root }) {
  await buildAddon({
    root,
    name: 'vrrpd',
    src: 'runtime/vrrpd/native/vrrpnet.c',
    libs: ['-lpthread'],
    hook: fileURLToPath(import.meta.url),
  });
}
