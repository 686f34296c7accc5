import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeAdvert,
  decodeAdvert,
  inetChecksum,
  pseudoHeader,
  encodeIp,
  decodeIp,
  garpFrame,
  AUTH_PASS,
  AUTH_NONE,
} from '../../../runtime/vrrpd/packet.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// Captured from Debian's keepalived 2.2.7 (tcpdump -x) in a test namespace: 10.99.0.1 -> 224.0.0.18
const KEEPALIVED_V2 = hex('2133 9601 0101 cf84 0a63 0064 7365 6372 6574 3132'); // vrid 51, prio 150, PASS "secret12", 1 s, 10.99.0.100
const KEEPALIVED_V3 = hex('3134 9601 000a 4305 0a63 0065'); // vrid 52, prio 150, 10 cs, 10.99.0.101
const KEEPALIVED_V3_IP = hex('45c0 0020 0001 0000 ff70 d036 0a63 0001 e000 0012 3134 9601 000a 4305 0a63 0065');

test('VRRPv2 encode gives the same bytes as keepalived (checksum over the message only)', () => {
  const b = encodeAdvert({
    version: 2,
    vrid: 51,
    priority: 150,
    interval: 1,
    addresses: ['10.99.0.100'],
    authType: AUTH_PASS,
    authData: 'secret12',
  });
  assert.deepEqual(b, KEEPALIVED_V2);
  assert.equal(inetChecksum(b), 0);
});

test('VRRPv2 decode of a keepalived advert', () => {
  const d = decodeAdvert(KEEPALIVED_V2);
  assert.equal(d.error, undefined);
  assert.deepEqual(d.advert, {
    version: 2,
    vrid: 51,
    priority: 150,
    interval: 1,
    addresses: ['10.99.0.100'],
    authType: AUTH_PASS,
    authData: 'secret12',
  });
});

test('VRRPv2 without authentication carries 8 zero bytes and decodes with auth type 0', () => {
  const b = encodeAdvert({ version: 2, vrid: 7, priority: 100, interval: 3, addresses: ['192.0.2.1', '192.0.2.2'] });
  assert.equal(b.length, 8 + 8 + 8);
  assert.deepEqual([...b.subarray(16)], [0, 0, 0, 0, 0, 0, 0, 0]);
  const d = decodeAdvert(b);
  assert.equal(d.advert?.authType, AUTH_NONE);
  assert.equal(d.advert?.authData, '');
  assert.deepEqual(d.advert?.addresses, ['192.0.2.1', '192.0.2.2']);
});

test('VRRPv3 encode gives the same bytes as keepalived (checksum with the IPv4 pseudo-header)', () => {
  const b = encodeAdvert({ version: 3, vrid: 52, priority: 150, interval: 10, addresses: ['10.99.0.101'] }, '10.99.0.1', '224.0.0.18');
  assert.deepEqual(b, KEEPALIVED_V3);
  assert.equal(inetChecksum(pseudoHeader('10.99.0.1', '224.0.0.18', b.length), b), 0);
  // without the pseudo-header the same message does not check
  assert.notEqual(inetChecksum(b), 0);
});

test('VRRPv3 decode needs the right addresses for the pseudo-header', () => {
  assert.deepEqual(decodeAdvert(KEEPALIVED_V3, '10.99.0.1', '224.0.0.18').advert, {
    version: 3,
    vrid: 52,
    priority: 150,
    interval: 10,
    addresses: ['10.99.0.101'],
  });
  assert.equal(decodeAdvert(KEEPALIVED_V3, '10.99.0.9', '224.0.0.18').error, 'checksum');
  assert.equal(decodeAdvert(KEEPALIVED_V3).error, 'checksum');
});

test('VRRPv3 unicast checksum uses the unicast destination; 12-bit centisecond interval', () => {
  const b = encodeAdvert({ version: 3, vrid: 1, priority: 254, interval: 4095, addresses: [] }, '10.0.0.1', '10.0.0.2');
  assert.equal(b.readUInt16BE(4), 4095);
  assert.equal(decodeAdvert(b, '10.0.0.1', '10.0.0.2').advert?.interval, 4095);
  assert.equal(decodeAdvert(b, '10.0.0.1', '224.0.0.18').error, 'checksum');
});

test('decode rejects corrupted, short, unknown-type and unknown-version messages', () => {
  const bad = Buffer.from(KEEPALIVED_V2);
  bad[2] = 151;
  assert.equal(decodeAdvert(bad).error, 'checksum');
  assert.equal(decodeAdvert(KEEPALIVED_V2.subarray(0, 6)).error, 'short');
  assert.equal(decodeAdvert(KEEPALIVED_V2.subarray(0, 12)).error, 'length');
  const t = Buffer.from(KEEPALIVED_V2);
  t[0] = 0x22;
  assert.equal(decodeAdvert(t).error, 'type');
  const v = Buffer.from(KEEPALIVED_V2);
  v[0] = 0x41;
  assert.equal(decodeAdvert(v).error, 'version');
});

test('the Internet checksum handles odd lengths and carries (RFC 1071 example)', () => {
  // RFC 1071 section 3: the one's complement sum of 0001 f203 f4f5 f6f7 is ddf2
  assert.equal(inetChecksum(hex('0001f203f4f5f6f7')), ~0xddf2 & 0xffff);
  assert.equal(inetChecksum(hex('01')), ~0x0100 & 0xffff);
  assert.equal(inetChecksum(hex('00'), hex('01f203f4f5f6f7')), inetChecksum(hex('0001f203f4f5f6f7')));
});

test('IPv4 header: TTL 255, protocol 112, valid header checksum; decode of keepalived datagram', () => {
  const ip = encodeIp('10.0.0.1', '224.0.0.18', KEEPALIVED_V3);
  assert.equal(ip[8], 255);
  assert.equal(ip[9], 112);
  assert.equal(inetChecksum(ip.subarray(0, 20)), 0);
  const d = decodeIp(KEEPALIVED_V3_IP)!;
  assert.equal(d.src, '10.99.0.1');
  assert.equal(d.dst, '224.0.0.18');
  assert.equal(d.ttl, 255);
  assert.equal(d.protocol, 112);
  assert.deepEqual(d.payload, KEEPALIVED_V3);
  assert.equal(decodeIp(hex('6000')), null);
});

test('gratuitous ARP frame: broadcast request with sender and target the VIP', () => {
  const f = garpFrame('02:00:00:00:00:01', '10.0.0.100');
  assert.equal(f.length, 42);
  assert.equal(f.subarray(0, 6).toString('hex'), 'ffffffffffff');
  assert.equal(f.subarray(6, 12).toString('hex'), '020000000001');
  assert.equal(f.readUInt16BE(12), 0x0806);
  assert.equal(f.readUInt16BE(20), 1);
  assert.equal(f.subarray(22, 28).toString('hex'), '020000000001');
  assert.deepEqual([...f.subarray(28, 32)], [10, 0, 0, 100]);
  assert.deepEqual([...f.subarray(38, 42)], [10, 0, 0, 100]);
});
