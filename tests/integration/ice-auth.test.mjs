// welcome.iceServers from configuration (STUN; TURN REST credentials), and
// JWT auth (PROTOCOL section 6). Auth and TURN run only when the binary
// advertises their flags in --help (they are planned, not yet built); a
// skipped test says so.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';

import { expectRefused } from './lib/client.mjs';
import { roomPath, uniq, useServer } from './lib/harness.mjs';
import { serverBinary } from './lib/server.mjs';

function helpText() {
  try {
    return execFileSync(serverBinary(), ['--help'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    return `${err.stdout ?? ''}${err.stderr ?? ''}`;
  }
}
const HELP = helpText();
const hasFlag = (flag) => new RegExp(`(^|\\s)${flag}(\\s|=|$)`, 'm').test(HELP);

const STUN = ['stun:stun.example.org:3478', 'stun:stun2.example.org'];

describe('welcome.iceServers with --stun-uris', () => {
  const ctx = useServer(['--stun-uris', STUN.join(',')]);

  it('carries the configured STUN URIs in RTCIceServer form', async () => {
    const a = await ctx.join(uniq('ice'), { peer: 'A' });
    const servers = a.welcome.iceServers;
    assert.ok(Array.isArray(servers));
    const urls = [];
    for (const s of servers) {
      assert.ok(s && typeof s === 'object', `ice server ${JSON.stringify(s)}`);
      const u = Array.isArray(s.urls) ? s.urls : [s.urls];
      for (const x of u) assert.equal(typeof x, 'string');
      urls.push(...u);
    }
    assert.deepEqual(urls.sort(), [...STUN].sort());
  });
});

function b64url(buf) {
  return Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}
function jwt(secret, claims, header = { alg: 'HS256', typ: 'JWT' }) {
  const h = b64url(JSON.stringify(header));
  const p = b64url(JSON.stringify(claims));
  const sig = b64url(createHmac('sha256', secret).update(`${h}.${p}`).digest());
  return `${h}.${p}.${sig}`;
}
const SECRET = 'integration-test-secret';
const now = () => Math.floor(Date.now() / 1000);

const AUTH_FLAG = '--auth-jwt-secret';
describe('JWT auth (--auth-jwt-secret)', { skip: hasFlag(AUTH_FLAG) ? false : `${AUTH_FLAG} not in --help: auth not built yet` }, () => {
  const ctx = useServer(hasFlag(AUTH_FLAG) ? [AUTH_FLAG, SECRET] : []);

  it('a valid token for the room (query parameter) joins', async () => {
    const room = uniq('auth');
    const a = await ctx.join(room, { peer: 'A', token: jwt(SECRET, { room, exp: now() + 60 }) });
    assert.equal(a.welcome.id, 'A');
  });

  it('a valid token in Authorization: Bearer joins; room "*" allows any room', async () => {
    const room = uniq('auth');
    const token = jwt(SECRET, { room: '*', exp: now() + 60 });
    const a = await ctx.join(room, { peer: 'A', headers: { Authorization: `Bearer ${token}` } });
    assert.equal(a.welcome.room, room);
  });

  it('missing token -> unauthorized, 4401', async () => {
    const c = await ctx.connect(roomPath(uniq('auth'), { peer: 'A' }));
    await expectRefused(c, 'unauthorized', 4401);
  });

  it('bad signature, expired token, or alg none -> unauthorized, 4401', async () => {
    const room = uniq('auth');
    const tokens = [
      jwt('wrong-secret', { room, exp: now() + 60 }),
      jwt(SECRET, { room, exp: now() - 60 }),
      `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify({ room, exp: now() + 60 }))}.`,
      'not-a-jwt',
    ];
    for (const token of tokens) {
      const c = await ctx.connect(roomPath(room, { peer: 'A', token }));
      await expectRefused(c, 'unauthorized', 4401);
    }
  });

  it('token for another room -> forbidden, 4403', async () => {
    const c = await ctx.connect(roomPath(uniq('auth'), { peer: 'A', token: jwt(SECRET, { room: 'other', exp: now() + 60 }) }));
    await expectRefused(c, 'forbidden', 4403);
  });

  it('sub fixes the peer id: another id -> forbidden, 4403; the same id joins', async () => {
    const room = uniq('auth');
    const token = jwt(SECRET, { room, sub: 'alice', exp: now() + 60 });
    const c = await ctx.connect(roomPath(room, { peer: 'mallory', token }));
    await expectRefused(c, 'forbidden', 4403);
    const a = await ctx.join(room, { peer: 'alice', token });
    assert.equal(a.welcome.id, 'alice');
  });
});

const TURN_FLAG = '--turn-secret';
describe('TURN REST credentials (--turn-secret)', { skip: hasFlag(TURN_FLAG) ? false : `${TURN_FLAG} not in --help: TURN not built yet` }, () => {
  const TURN_SECRET = 'turn-test-secret';
  const ctx = useServer(hasFlag(TURN_FLAG) ? [TURN_FLAG, TURN_SECRET, '--turn-uris', 'turn:turn.example.org:3478'] : []);

  it('welcome.iceServers carries username "<expiry>:<peer id>" and credential base64(HMAC-SHA1(secret, username))', async () => {
    const a = await ctx.join(uniq('turn'), { peer: 'A' });
    const turn = a.welcome.iceServers.find((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]).some((u) => u.startsWith('turn')));
    assert.ok(turn, `no TURN entry in ${JSON.stringify(a.welcome.iceServers)}`);
    const m = /^(\d+):(.+)$/.exec(turn.username);
    assert.ok(m, `username ${turn.username}`);
    assert.equal(m[2], 'A');
    assert.ok(Number(m[1]) > now(), 'expiry in the future');
    assert.equal(turn.credential, createHmac('sha1', TURN_SECRET).update(turn.username).digest('base64'));
  });
});
