// Logs (issue 4, item 5): one line per join, leave and refusal, naming the
// room, the peer, the remote address and the reason; never a token or an
// SDP body at info level; --log-format json gives one JSON object per line;
// --log-level warn drops the info lines.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';

import { Client, expectRefused } from './lib/client.mjs';
import { roomPath, uniq, useServer, waitFor, withDeadline } from './lib/harness.mjs';
import { httpGet } from './lib/http.mjs';
import { makeJwt, nowS } from './lib/ops.mjs';
import { serverBinary } from './lib/server.mjs';

const SECRET = 'ops-logs-secret';

/** Log lines (JSON-parsed `msg` for the json format) matching `re`, waited for with a deadline. */
async function logLine(ctx, re, { json = false, what = String(re) } = {}) {
  return waitFor(
    () => {
      for (const line of ctx.server.log().split('\n')) {
        const text = json && line.trim() ? JSON.parse(line).msg : line;
        if (re.test(text)) return text;
      }
      return false;
    },
    { what: `log line ${what}` },
  );
}

const localPort = (client) => client.ws._socket.localPort;

for (const format of ['json', 'text']) {
  describe(`--log-format ${format}: join, leave and refusal lines`, () => {
    const ctx = useServer(['--log-format', format, '--auth-jwt-secret', SECRET]);
    const json = format === 'json';
    const tokens = [];
    const tok = (claims) => {
      const t = makeJwt(SECRET, claims);
      tokens.push(t);
      return t;
    };

    it('a join names mode, room, peer and the remote address', async () => {
      const room = uniq('log');
      const a = await ctx.join(room, { peer: 'alice', token: tok({ room, exp: nowS() + 60 }) });
      const line = await logLine(ctx, new RegExp(`join .*room=${room} .*peer=alice .*remote=127\\.0\\.0\\.1:${localPort(a)}\\b`), { json });
      assert.match(line, /mode=room/);
    });

    it('X-Forwarded-For is ignored without trusted proxies', async () => {
      const room = uniq('log');
      const a = await ctx.join(room, {
        peer: 'xff', token: tok({ room, exp: nowS() + 60 }), headers: { 'X-Forwarded-For': '203.0.113.7' },
      });
      const line = await logLine(ctx, new RegExp(`join .*room=${room} .*peer=xff .*remote=127\\.0\\.0\\.1:${localPort(a)}\\b`), { json });
      assert.doesNotMatch(line, /203\.0\.113\.7|proxy=/);
    });

    it('a leave names room, peer, remote address and how', async () => {
      const room = uniq('log');
      const a = await ctx.join(room, { peer: 'bob', token: tok({ room, exp: nowS() + 60 }) });
      const port = localPort(a);
      await a.close();
      const line = await logLine(ctx, new RegExp(`leave .*room=${room} .*peer=bob .*remote=127\\.0\\.0\\.1:${port}\\b`), { json });
      assert.match(line, /how=closed/);
    });

    it('a refusal names the room, the remote address, the code and the reason', async () => {
      const room = uniq('log');
      const c = await ctx.connect(roomPath(room, { peer: 'carol' }));
      const port = localPort(c);
      await expectRefused(c, 'unauthorized', 4401);
      const line = await logLine(ctx, new RegExp(`refuse .*${room}.*remote=127\\.0\\.0\\.1:${port}\\b`), { json });
      assert.match(line, /code=unauthorized/);
      assert.match(line, /reason=.*token/);
    });

    it('a refusal line names the peer id too', async () => {
      const room = uniq('log');
      const c = await ctx.connect(roomPath(room, { peer: 'dave' }));
      const port = localPort(c);
      await expectRefused(c, 'unauthorized', 4401);
      const line = await logLine(ctx, new RegExp(`refuse .*remote=127\\.0\\.0\\.1:${port}\\b`), { json });
      assert.match(line, new RegExp(`room=${room}\\b`));
      assert.match(line, /peer=dave\b/);
    });

    it('no token and no SDP body reaches the log at info level', async () => {
      const room = uniq('log');
      const a = await ctx.join(room, { peer: 'A', token: tok({ room, exp: nowS() + 60 }) });
      const b = await ctx.join(room, { peer: 'B', headers: { Authorization: `Bearer ${tok({ room, exp: nowS() + 60 })}` } });
      await a.nextOfType('peer-joined');
      const body = `v=0 o=- SDP-BODY-${uniq('sdp')}`;
      b.send({ type: 'offer', id: 'A', description: body });
      assert.equal((await a.next()).description, body);
      const bad = await ctx.connect(roomPath(room, { peer: 'C', token: tok({ room: 'other', exp: nowS() + 60 }) }));
      await expectRefused(bad, 'forbidden', 4403);
      await b.close();
      await logLine(ctx, new RegExp(`leave .*room=${room} .*peer=B`), { json });
      const log = ctx.server.log();
      assert.ok(!log.includes('SDP-BODY-'), 'an SDP body is in the log');
      for (const t of tokens) assert.ok(!log.includes(t.split('.')[2]), 'a token is in the log');
      if (json) {
        for (const line of log.split('\n').filter((l) => l.trim())) {
          const obj = JSON.parse(line);
          assert.equal(typeof obj.msg, 'string', line);
          assert.equal(typeof obj.level, 'string', line);
        }
      }
    });
  });
}

/** The parsed JSON log objects of `ctx`'s server that satisfy `pred`, waited for. */
async function jsonLogObject(ctx, pred, what) {
  return waitFor(
    () => ctx.server.log().split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)).find(pred) ?? false,
    { what },
  );
}

describe('--log-format json: event fields are keys of their own', () => {
  const ctx = useServer(['--log-format', 'json']);

  it('join, refuse and leave objects carry event, mode, room, peer, remote and their own fields', async () => {
    const room = uniq('log');
    const a = await ctx.join(room, { peer: 'alice' });
    const remote = `127.0.0.1:${localPort(a)}`;
    const join = await jsonLogObject(ctx, (o) => o.event === 'join' && o.room === room, 'a join object');
    assert.deepEqual(
      { mode: join.mode, peer: join.peer, remote: join.remote, resumed: join.resumed, level: join.level },
      { mode: 'room', peer: 'alice', remote, resumed: false, level: 'info' },
    );
    assert.match(join.msg, /^join /, 'msg keeps the text form');
    const dup = await ctx.connect(roomPath(room, { peer: 'alice' }));
    await expectRefused(dup, 'id-taken', 4409);
    const refuse = await jsonLogObject(ctx, (o) => o.event === 'refuse' && o.room === room, 'a refuse object');
    assert.equal(refuse.code, 'id-taken');
    assert.equal(typeof refuse.reason, 'string');
    await a.close();
    const leave = await jsonLogObject(ctx, (o) => o.event === 'leave' && o.room === room, 'a leave object');
    assert.deepEqual({ peer: leave.peer, how: leave.how, remote: leave.remote }, { peer: 'alice', how: 'closed', remote });
  });
});

describe('--trusted-proxies: the client address from X-Forwarded-For', () => {
  const ctx = useServer(['--log-format', 'json', '--trusted-proxies', '127.0.0.1,10.0.0.0/8']);

  it('a trusted proxy names the client; a forged entry further left is not believed', async () => {
    const room = uniq('log');
    const a = await ctx.join(room, {
      peer: 'behind', headers: { 'X-Forwarded-For': '198.51.100.9, 203.0.113.7, 10.1.2.3' },
    });
    const join = await jsonLogObject(ctx, (o) => o.event === 'join' && o.room === room, 'a join object');
    assert.equal(join.remote, '203.0.113.7');
    assert.equal(join.proxy, `127.0.0.1:${localPort(a)}`);
    await a.close();
    const leave = await jsonLogObject(ctx, (o) => o.event === 'leave' && o.room === room, 'a leave object');
    assert.equal(leave.remote, '203.0.113.7');
  });

  it('without the header (or with garbage) the proxy itself is the remote', async () => {
    const room = uniq('log');
    const a = await ctx.join(room, { peer: 'plain' });
    const b = await ctx.join(room, { peer: 'junk', headers: { 'X-Forwarded-For': 'unknown' } });
    for (const [peer, c] of [['plain', a], ['junk', b]]) {
      const join = await jsonLogObject(ctx, (o) => o.event === 'join' && o.room === room && o.peer === peer, `${peer} join`);
      assert.equal(join.remote, `127.0.0.1:${localPort(c)}`);
      assert.equal(join.proxy, undefined);
    }
  });

  it('a bad --trusted-proxies value is a config error (exit 2) naming the setting', async () => {
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(serverBinary(), ['--trusted-proxies', '10.0.0.0/33'], { timeout: 10000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr.toString() + r.stdout.toString(), /trusted.proxies/);
  });
});

describe('--log-level warn: no info lines', () => {
  // The "listening on" line is info too, so this server is started on a port
  // picked here and is ready when /healthz answers.
  let proc;
  let port;
  let log = '';

  before(async () => {
    port = await new Promise((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const p = srv.address().port;
        srv.close(() => resolve(p));
      });
    });
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RENDEZVOUS_')));
    proc = spawn(serverBinary(), ['--listen', `127.0.0.1:${port}`, '--log-level', 'warn'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout.on('data', (c) => (log += c));
    proc.stderr.on('data', (c) => (log += c));
    await waitFor(async () => (await httpGet(port, '/healthz')).status === 200, { what: '/healthz', timeoutMs: 10000 });
  });

  after(async () => {
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.kill('SIGTERM');
    assert.equal(await withDeadline(exited, 5000, 'server exit after SIGTERM'), 0);
  });

  it('joins, leaves and refusals are not logged at warn', async () => {
    const room = uniq('log');
    const open = async (p) => {
      const c = new Client(`ws://127.0.0.1:${port}${p}`, { label: p });
      await c.opened;
      return c;
    };
    const a = await open(roomPath(room, { peer: 'A' }));
    assert.equal((await a.next()).type, 'welcome');
    const dup = await open(roomPath(room, { peer: 'A' }));
    await expectRefused(dup, 'id-taken', 4409);
    await a.close();
    // handled in order: a fresh join in the same room finds it empty
    const b = await open(roomPath(room, { peer: 'B' }));
    assert.deepEqual((await b.next()).peers, []);
    await b.close();
    assert.doesNotMatch(log, /\b(join|leave|refuse) /);
  });
});
