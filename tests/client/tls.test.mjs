// rendezvous-peer over wss:// against the real server with a certificate made
// now: it verifies the chain and the host name by default, trusts a CA given
// with --ca-file, refuses an untrusted or misnamed certificate once (exit 3,
// no retry loop), and skips the checks only with --insecure.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, startPeer, cleanup } from './lib/harness.mjs';
import { makeSelfSignedCert } from '../lib/certs.mjs';

const dir = mkdtempSync(path.join(os.tmpdir(), 'rendezvous-client-tls-'));
after(() => { cleanup(); rmSync(dir, { recursive: true, force: true }); });

const cert = makeSelfSignedCert(dir, 'server');  // 127.0.0.1 and localhost
const other = makeSelfSignedCert(dir, 'other');  // same names, another key: not our server's
const named = makeSelfSignedCert(dir, 'named', { cn: 'elsewhere.test', san: 'DNS:elsewhere.test' });

async function startTlsServer(c = cert) {
  const server = await startServer({ args: ['--tls-cert', c.cert, '--tls-key', c.key] });
  server.wss = `wss://127.0.0.1:${server.port}`;
  return server;
}

// Joins with `extra` and expects a refusal of the certificate: exit 3 after
// exactly one attempt, with the reason in the error event.
async function expectCertificateRefused(url, extra, reason) {
  const p = startPeer(url, 'tls', ['--signaling-only', '--timeout', '30', ...extra], { stdin: 'ignore' });
  const err = await p.event('error', (e) => e.code === 'connect-failed');
  assert.match(err.message, /TLS certificate failed verification/);
  assert.match(err.message, reason);
  const { code } = await p.exit();
  assert.equal(code, 3, p.stderr.join('\n'));
  assert.equal(p.all('joined').length, 0);
  return p;
}

test('two peers over wss:// with --ca-file: verified, relayed, data channel open', async () => {
  const server = await startTlsServer();
  const args = (me) => ['--id', me, '--ca-file', cert.cert, '--send', `hi from ${me}`, '--exit-after', '1',
    '--timeout', '60'];
  const alice = startPeer(server.wss, 'tls-pair', args('alice'));
  await alice.event('joined');
  const bob = startPeer(server.wss, 'tls-pair', args('bob'));
  const [ma, mb] = await Promise.all([alice.event('message'), bob.event('message')]);
  assert.deepEqual([ma.peer, ma.text], ['bob', 'hi from bob']);
  assert.deepEqual([mb.peer, mb.text], ['alice', 'hi from alice']);
  const [ea, eb] = await Promise.all([alice.exit(), bob.exit()]);
  assert.equal(ea.code, 0, alice.stderr.join('\n'));
  assert.equal(eb.code, 0, bob.stderr.join('\n'));
  await server.kill();
});

test('the host name is checked too: localhost is in the certificate, so it is accepted', async () => {
  const server = await startTlsServer();
  const p = startPeer(`wss://localhost:${server.port}`, 'tls', ['--signaling-only', '--ca-file', cert.cert]);
  const joined = await p.event('joined');
  assert.equal(joined.room, 'tls');
  await p.stop();
  await server.kill();
});

test('a self-signed certificate not in the trust store is refused: exit 3, one attempt', async () => {
  const server = await startTlsServer();
  // The system's trust store (the default) does not hold the test's certificate.
  await expectCertificateRefused(server.wss, [], /self[- ]signed/i);
  // Nor does another CA's file.
  await expectCertificateRefused(server.wss, ['--ca-file', other.cert], /self[- ]signed|unable to get/i);
  const attempts = server.log.filter((l) => /\bjoin\b.*room=tls\b/.test(l));
  assert.equal(attempts.length, 0, 'no join reached the server');
  await server.kill();
});

test('a trusted certificate for another host name is refused', async () => {
  const server = await startTlsServer(named);
  await expectCertificateRefused(server.wss, ['--ca-file', named.cert], /IP address mismatch \(host 127\.0\.0\.1\)/);
  await expectCertificateRefused(`wss://localhost:${server.port}`, ['--ca-file', named.cert],
    /hostname mismatch \(host localhost\)/);
  await server.kill();
});

test('--insecure skips verification (and only then does the untrusted server work)', async () => {
  const server = await startTlsServer(named);
  const p = startPeer(server.wss, 'tls', ['--signaling-only', '--insecure']);
  const joined = await p.event('joined');
  assert.equal(joined.room, 'tls');
  await p.stop();
  await server.kill();
});

test('a CA file that cannot be loaded is a usage error (exit 2)', async () => {
  const { spawnSync } = await import('node:child_process');
  const { PEER } = await import('./lib/harness.mjs');
  const bad = spawnSync(PEER, ['--server', 'wss://127.0.0.1:1', '--room', 'x', '--ca-file', cert.key]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr.toString(), /cannot load CA file/);
  const missing = spawnSync(PEER, ['--server', 'wss://127.0.0.1:1', '--room', 'x', '--ca-file', path.join(dir, 'nope.pem')]);
  assert.equal(missing.status, 2);
});
