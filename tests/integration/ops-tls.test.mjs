// TLS (issue 4, item 1): with --tls-cert/--tls-key the listen port serves
// https and wss only. The certificate is a self-signed P-256 one made by
// openssl at test time; clients verify it (ws/https `ca` option), a client
// that trusts another CA (or only the system CAs) is refused, and plain
// ws:// or http:// to the TLS port gets nothing.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { expectRefused } from './lib/client.mjs';
import { httpGet } from './lib/http.mjs';
import { roomPath, uniq, waitForConnections } from './lib/harness.mjs';
import {
  expectOpenFails,
  httpsRequest,
  makeClient,
  makeJwt,
  makeSelfSignedCert,
  nowS,
  tempDir,
  useTlsServer,
} from './lib/ops.mjs';
import { startServer } from './lib/server.mjs';

const dir = tempDir('rendezvous-tls-');
const server = makeSelfSignedCert(dir, 'server');
const otherCa = makeSelfSignedCert(dir, 'other');

describe('wss:// and https:// with a certificate made at test time', () => {
  const ctx = useTlsServer(['--tls-cert', server.cert, '--tls-key', server.key, '--handshake-timeout-ms', '1000'], {
    ca: server.pem,
  });

  it('logs that it serves https/wss', () => {
    assert.match(ctx.server.log(), /listening on 127\.0\.0\.1:\d+ \(https\/wss/);
  });

  it('/healthz, /readyz and /metrics answer over https with verification on', async () => {
    const health = await ctx.http('/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.body.trim(), 'ok');
    assert.equal((await ctx.http('/readyz')).status, 200);
    const m = await ctx.metrics();
    assert.ok(m.has('rendezvous_connections'), 'metrics over https');
    // by name too: the certificate has DNS:localhost
    const byName = await httpsRequest(ctx.port, '/healthz', { ca: server.pem, host: 'localhost' });
    assert.equal(byName.status, 200);
  });

  it('relay over wss: offer by id (id rewritten), broadcast, ping/pong, peer-left', async () => {
    const room = uniq('tls');
    const a = await ctx.join(room, { peer: 'A' });
    assert.deepEqual(a.welcome.peers, []);
    const b = await ctx.join(room, { peer: 'B' });
    assert.deepEqual(b.welcome.peers, ['A']);
    assert.deepEqual(await a.next(), { type: 'peer-joined', id: 'B' });

    b.send('{"type":"offer","id":"A","description":"v=0\\r\\n"}');
    assert.equal(await a.nextRaw(), '{"type":"offer","id":"B","description":"v=0\\r\\n"}');
    a.send({ type: 'answer', id: 'B', description: 'x' });
    assert.deepEqual(await b.next(), { type: 'answer', id: 'A', description: 'x' });
    b.send({ type: 'candidate', candidate: '', mid: '0' });
    assert.deepEqual(await a.next(), { type: 'candidate', id: 'B', candidate: '', mid: '0' });

    // a frame larger than one TLS record (16 KiB) arrives whole
    const big = 'x'.repeat(40000);
    a.send({ type: 'offer', id: 'B', description: big });
    const got = await b.next();
    assert.equal(got.description.length, big.length);

    a.send({ type: 'ping', t: 7 });
    assert.deepEqual(await a.next(), { type: 'pong', t: 7 });

    await b.close();
    assert.deepEqual(await a.next(), { type: 'peer-left', id: 'B', reason: 'closed' });
  });

  it('lobby mode over wss (/{id})', async () => {
    const x = await ctx.lobby(uniq('X'));
    const yId = uniq('Y');
    const y = await ctx.lobby(yId);
    x.send({ type: 'offer', id: yId, description: 'lobby' });
    const got = await y.next();
    assert.equal(got.description, 'lobby');
    assert.match(got.id, /^X-/);
  });

  it('refusals over wss: bad room -> bad-request 4400; id taken -> id-taken 4409', async () => {
    const bad = await ctx.connect('/rooms/bad%20room?peer=p');
    await expectRefused(bad, 'bad-request', 4400);
    const room = uniq('tls');
    const a = await ctx.join(room, { peer: 'A' });
    const dup = await ctx.connect(roomPath(room, { peer: 'A' }));
    await expectRefused(dup, 'id-taken', 4409);
    await a.expectQuiet();
  });

  it('a client that trusts another CA is refused by its own verification', async () => {
    const c = makeClient(ctx.url(roomPath(uniq('tls'), { peer: 'A' })), { wsOptions: { ca: otherCa.pem } });
    const err = await expectOpenFails(c);
    assert.match(err.message, /self[- ]signed|unable to verify|certificate/i);
    await assert.rejects(httpsRequest(ctx.port, '/healthz', { ca: otherCa.pem }), /self[- ]signed|unable to verify|certificate/i);
  });

  it('a client with only the system CAs is refused too (verification is on by default)', async () => {
    const c = makeClient(ctx.url(roomPath(uniq('tls'), { peer: 'A' })));
    const err = await expectOpenFails(c);
    assert.match(err.message, /self[- ]signed|unable to verify|certificate/i);
  });

  it('plain ws:// and http:// to the TLS port get no WebSocket and no HTTP answer', async () => {
    const c = makeClient(`ws://127.0.0.1:${ctx.port}${roomPath(uniq('tls'), { peer: 'A' })}`);
    await expectOpenFails(c);
    await assert.rejects(httpGet(ctx.port, '/healthz'));
    // and the server is fine afterwards
    assert.equal((await ctx.http('/healthz')).status, 200);
  });

  it('a connection that never starts the TLS handshake is closed after --handshake-timeout-ms', async () => {
    const sock = await ctx.rawSocket();
    const closed = new Promise((resolve) => sock.once('close', resolve));
    let timer;
    await Promise.race([
      closed,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('idle TCP connection not closed within 5 s (timeout 1 s)')), 5000);
      }),
    ]);
    clearTimeout(timer);
    await waitForConnections(ctx, (v) => v === 0, 'no WebSocket connection counted');
  });
});

describe('wss:// with auth: the token travels inside TLS', () => {
  const SECRET = 'tls-auth-secret';
  const ctx = useTlsServer(['--tls-cert', server.cert, '--tls-key', server.key, '--auth-jwt-secret', SECRET], {
    ca: server.pem,
  });

  it('a valid Bearer token joins; a missing one -> unauthorized 4401', async () => {
    const room = uniq('tls');
    const token = makeJwt(SECRET, { room, exp: nowS() + 60 });
    const a = await ctx.join(room, { peer: 'A', headers: { Authorization: `Bearer ${token}` } });
    assert.equal(a.welcome.id, 'A');
    const c = await ctx.connect(roomPath(room, { peer: 'B' }));
    await expectRefused(c, 'unauthorized', 4401);
  });
});

describe('TLS configuration errors stop the server at start', () => {
  const expectStartFails = async (args, re) => {
    await assert.rejects(startServer(args, { readyTimeoutMs: 5000 }), (err) => {
      assert.match(err.message, /server exited early \(code [12],/);
      assert.match(err.message, re);
      return true;
    });
  };

  it('--tls-cert without --tls-key', async () => {
    await expectStartFails(['--tls-cert', server.cert], /tls_cert and tls_key must be set together/);
  });

  it('a missing certificate file', async () => {
    await expectStartFails(['--tls-cert', `${dir}/nope.crt`, '--tls-key', server.key], /cannot load tls_cert/);
  });

  it('a key that does not match the certificate', async () => {
    await expectStartFails(['--tls-cert', server.cert, '--tls-key', otherCa.key], /cannot load tls_cert/);
  });
});
