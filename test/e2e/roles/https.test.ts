// End-to-end in the lab, both engines: HTTPS on the VIP (roles.proxy.tls). With the self-signed
// certificate hasetup generates, a client that trusts it explicitly gets 200 through the VIP from
// either LB; plain HTTP is redirected to HTTPS but for the health URL; a second apply changes nothing;
// a certificate replaced by a re-apply while a bounded HTTPS load runs costs no request and is then
// served by both LBs; HTTPS turned off again takes the key off the LBs and closes the port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadInventory } from '../../../inventory/load.ts';
import { labForFile, labUnavailable } from '../../helpers/lab.ts';
import { commandUnavailable, prerequisites } from '../../helpers/env.ts';
import { apply, inventoryFor, loadThroughVip, notOk, VIP_ADDRESS, waitVipOn, type EngineName } from '../../helpers/lb-lab.ts';

const skip = labUnavailable() ?? commandUnavailable('curl');
const L = labForFile(skip);
const lb02 = (): string => L().hosts.find((h) => h.name === 'lb02')!.address;

/** The engine's lab inventory with roles.proxy.tls as given (YAML flow text), its secrets beside it. */
async function tlsInventory(engine: EngineName, tls: string): Promise<string> {
  const plain = await inventoryFor(L(), engine);
  const file = plain.replace(/\.yaml$/, '-tls.yaml');
  const text = readFileSync(plain, 'utf8');
  // under roles.proxy when the inventory has one, else a roles.proxy of its own
  const withTls = /^ {2}proxy:\n/m.test(text)
    ? text.replace(/^ {2}proxy:\n/m, `  proxy:\n    tls: ${tls}\n`)
    : text.replace(/^roles:\n/m, `roles:\n  proxy:\n    tls: ${tls}\n`);
  assert.notEqual(withTls, text, 'roles.proxy.tls written into the inventory');
  writeFileSync(file, withTls);
  copyFileSync(plain.replace(/\.yaml$/, '.secrets.yaml'), file.replace(/\.yaml$/, '.secrets.yaml'));
  return file;
}

/** curl from the controller's namespace: "<status> <served by> <redirect>" (000 when no answer). */
async function curl(url: string, extra: string[] = []): Promise<string> {
  const r = await L().exec([
    'curl',
    '-s',
    '-o',
    '/dev/null',
    '--max-time',
    '5',
    '-w',
    '%{http_code} %header{x-served-by} %{redirect_url}',
    ...extra,
    url,
  ]);
  return r.stdout.trim();
}

for (const engine of ['bundled', 'haproxy'] as EngineName[]) {
  test(
    `[${engine}] HTTPS through the VIP with the generated certificate, the redirect, a certificate replaced under load, HTTPS off again`,
    { timeout: 12 * 60_000 },
    async (t) => {
      if (!prerequisites(t, skip)) return;
      const dir = L().config.stateDir;
      const inv = await tlsInventory(engine, '{ redirect: true, names: [lab, www.lab.test] }');
      const first = await apply(L(), inv);
      assert.equal(first.code, 0, notOk(first));
      await waitVipOn(L(), 'lb01', 30_000);
      const tls = (await loadInventory(inv)).roles.proxy.tls!;
      assert.equal(tls.source.kind, 'generated');
      const oldCa = join(dir, `https-${engine}-old.pem`);
      writeFileSync(oldCa, tls.certificate);

      // HTTPS through the VIP, the client trusting the generated certificate and nothing else
      assert.match(await curl(`https://${VIP_ADDRESS}/`, ['--cacert', oldCa]), /^200 web0\d$/);
      assert.match(
        await curl(`https://www.lab.test/`, ['--cacert', oldCa, '--resolve', `www.lab.test:443:${VIP_ADDRESS}`]),
        /^200 web0\d$/,
        'by its DNS name too',
      );
      assert.match(await curl(`https://${VIP_ADDRESS}/`), /^000/, 'a client that does not trust it is refused');
      // ... and from lb02 (the backup) as well, by the name the certificate carries
      assert.match(await curl('https://lab/', ['--cacert', oldCa, '--resolve', `lab:443:${lb02()}`]), /^200 web0\d$/);

      // plain HTTP: a redirect to the same URL over HTTPS, but the health URL (the VRRP tracker's)
      assert.equal(await curl(`http://${VIP_ADDRESS}/some/page?x=1`), `301  https://${VIP_ADDRESS}/some/page?x=1`);
      assert.match(await curl(`http://${VIP_ADDRESS}/health`), /^200 web0\d$/);

      const again = await apply(L(), inv);
      assert.equal(again.code, 0, notOk(again));
      assert.deepEqual(
        Object.entries(again.hosts)
          .filter(([, r]) => r.changed)
          .map(([h]) => h),
        [],
        'a second apply changes nothing',
      );
      assert.doesNotMatch(again.stdout, /PRIVATE KEY|BEGIN/, 'no key, no certificate in the output');

      // a new certificate (other names: generated anew) applied while HTTPS load runs
      writeFileSync(inv, readFileSync(inv, 'utf8').replace('names: [lab, www.lab.test]', 'names: [lab, www2.lab.test]'));
      const renewed = (await loadInventory(inv)).roles.proxy.tls!;
      assert.notEqual(renewed.fingerprint, tls.fingerprint);
      const newCa = join(dir, `https-${engine}-new.pem`);
      writeFileSync(newCa, renewed.certificate);
      const both = join(dir, `https-${engine}-both.pem`);
      writeFileSync(both, tls.certificate + renewed.certificate);
      const loading = loadThroughVip(L(), 60, 45_000, 0, undefined, { port: 443, caFile: both });
      await new Promise((r) => setTimeout(r, 3000));
      const replaced = await apply(L(), inv);
      assert.equal(replaced.code, 0, notOk(replaced));
      const load = await loading;
      assert.ok(load.total >= 1500, `a load of at least 1500 requests (got ${load.total})`);
      assert.equal(
        load.failed,
        0,
        `no failed HTTPS request while the certificate was replaced: ${JSON.stringify(load.failures.slice(0, 5))}`,
      );
      for (const lbAddress of [VIP_ADDRESS, lb02()])
        assert.match(
          await curl('https://lab/', ['--cacert', newCa, '--resolve', `lab:443:${lbAddress}`]),
          /^200 web0\d$/,
          `the new certificate served at ${lbAddress}`,
        );

      // HTTPS off: the key leaves both LBs, the port closes, HTTP serves again
      const plain = await inventoryFor(L(), engine);
      const off = await apply(L(), plain);
      assert.equal(off.code, 0, notOk(off));
      for (const lb of ['lb01', 'lb02']) {
        const r = await L().ssh(lb, 'test -e /etc/haproxy/tls && echo present || echo gone');
        assert.equal(r.stdout.trim(), 'gone', `${lb}: the certificate and key removed`);
      }
      assert.match(await curl(`https://${VIP_ADDRESS}/`, ['--cacert', newCa, '--max-time', '2']), /^000/);
      assert.match(await curl(`http://${VIP_ADDRESS}/`), /^200 web0\d$/);
    },
  );
}
