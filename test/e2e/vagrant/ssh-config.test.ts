// What the Vagrant lab reads without booting anything: `vagrant ssh-config` output (libvirt and
// VirtualBox shapes) and the lab's plan, which the Vagrantfile reads too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSshConfig, readPlan } from '../../../cli/lab/vagrant.ts';

test('vagrant ssh-config: one entry per machine, with address, user, port and key', () => {
  const text = [
    'Host lb01',
    '  HostName 10.213.1.103',
    '  User vagrant',
    '  Port 22',
    '  UserKnownHostsFile /dev/null',
    '  StrictHostKeyChecking no',
    '  PasswordAuthentication no',
    '  IdentityFile /home/u/hasetup/.vagrant/machines/lb01/libvirt/private_key',
    '  IdentitiesOnly yes',
    '  LogLevel FATAL',
    '',
    'Host web01',
    '  HostName 127.0.0.1',
    '  User vagrant',
    '  Port 2200',
    '  IdentityFile "/home/u/my lab/.vagrant/machines/web01/virtualbox/private_key"',
    '  IdentityFile /home/u/.vagrant.d/insecure_private_key',
    '',
  ].join('\n');
  assert.deepEqual(parseSshConfig(text), [
    {
      host: 'lb01',
      hostName: '10.213.1.103',
      user: 'vagrant',
      port: 22,
      identityFile: '/home/u/hasetup/.vagrant/machines/lb01/libvirt/private_key',
    },
    {
      host: 'web01',
      hostName: '127.0.0.1',
      user: 'vagrant',
      port: 2200,
      identityFile: '/home/u/my lab/.vagrant/machines/web01/virtualbox/private_key',
    },
  ]);
  assert.deepEqual(parseSshConfig(''), []);
});

test('the lab plan: five hosts of the inventory format inside 10.213.0.0/24, isolated networks apart', () => {
  const plan = readPlan();
  assert.deepEqual(
    plan.hosts.map((h) => [h.name, h.group, h.address]),
    [
      ['lb01', 'lb', '10.213.0.11'],
      ['lb02', 'lb', '10.213.0.12'],
      ['web01', 'web', '10.213.0.21'],
      ['web02', 'web', '10.213.0.22'],
      ['db01', 'db', '10.213.0.31'],
    ],
  );
  assert.equal(plan.private_network.host_ip, '10.213.0.10');
  assert.match(plan.management_network.address, /^10\.213\.\d+\.0\/24$/);
  assert.ok(!plan.management_network.address.startsWith('10.213.0.'), 'the management network is not the lab network');
  assert.notEqual(plan.private_network.name, plan.management_network.name);
  for (const h of plan.hosts) assert.ok(h.memory >= 256 && h.memory <= 1024, `${h.name}: ${h.memory} MiB`);
});
