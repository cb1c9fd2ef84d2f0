// Room mode: welcome, events, relay, broadcast, ping/pong, reserved types.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { expectErrorFrame } from './lib/client.mjs';
import { NAME_RE, uniq, useServer } from './lib/harness.mjs';

const RESERVED = ['welcome', 'peer-joined', 'peer-left', 'error', 'pong'];

describe('room mode: welcome and membership events', () => {
  const ctx = useServer([]);

  it('welcome carries id, room, peers, resume token and iceServers', async () => {
    const room = uniq('welcome');
    const a = await ctx.join(room, { peer: 'alice' });
    const w = a.welcome;
    assert.equal(w.type, 'welcome');
    assert.equal(w.id, 'alice');
    assert.equal(w.room, room);
    assert.deepEqual(w.peers, []);
    assert.equal(typeof w.resume, 'string');
    assert.ok(w.resume.length > 0, 'resume token is not empty');
    assert.ok(Array.isArray(w.iceServers), 'iceServers is an array');
    for (const s of w.iceServers) {
      assert.ok(s && typeof s === 'object' && 'urls' in s, `ice server without urls: ${JSON.stringify(s)}`);
    }
    assert.notEqual(w.resumed, true, 'a fresh join is not resumed');
    await a.expectQuiet();
  });

  it('peers lists the others oldest first (join order, not alphabetical)', async () => {
    const room = uniq('order');
    const zed = await ctx.join(room, { peer: 'zed' });
    const alpha = await ctx.join(room, { peer: 'alpha' });
    const mid = await ctx.join(room, { peer: 'mid' });
    assert.deepEqual(alpha.welcome.peers, ['zed']);
    assert.deepEqual(mid.welcome.peers, ['zed', 'alpha']);
    const last = await ctx.join(room, { peer: 'last' });
    assert.deepEqual(last.welcome.peers, ['zed', 'alpha', 'mid']);
    // every welcome has its own token
    const tokens = new Set([zed, alpha, mid, last].map((c) => c.welcome.resume));
    assert.equal(tokens.size, 4, 'resume tokens are distinct');
  });

  it('without a peer parameter the server assigns a valid, unique id', async () => {
    const room = uniq('auto');
    const a = await ctx.join(room);
    const b = await ctx.join(room);
    assert.match(a.welcome.id, NAME_RE);
    assert.match(b.welcome.id, NAME_RE);
    assert.notEqual(a.welcome.id, b.welcome.id);
    assert.deepEqual(b.welcome.peers, [a.welcome.id]);
    const joined = await a.next();
    assert.deepEqual(joined, { type: 'peer-joined', id: b.welcome.id });
    // the assigned id is usable as a target
    b.send({ type: 'offer', id: a.welcome.id, description: 'x' });
    assert.deepEqual(await a.next(), { type: 'offer', id: b.welcome.id, description: 'x' });
  });

  it('peer-joined goes to everyone else, not to the joiner', async () => {
    const room = uniq('joined');
    const a = await ctx.join(room, { peer: 'a' });
    const b = await ctx.join(room, { peer: 'b' });
    assert.deepEqual(await a.next(), { type: 'peer-joined', id: 'b' });
    const c = await ctx.join(room, { peer: 'c' });
    assert.deepEqual(await a.next(), { type: 'peer-joined', id: 'c' });
    assert.deepEqual(await b.next(), { type: 'peer-joined', id: 'c' });
    await c.expectQuiet();
    await a.expectQuiet();
    await b.expectQuiet();
  });

  it('a clean close sends peer-left reason "closed" at once to the others', async () => {
    const room = uniq('left');
    const a = await ctx.join(room, { peer: 'a' });
    const b = await ctx.join(room, { peer: 'b' });
    const c = await ctx.join(room, { peer: 'c' });
    await a.nextOfType('peer-joined');
    await a.nextOfType('peer-joined');
    await b.nextOfType('peer-joined');
    await c.close();
    assert.deepEqual(await a.next(), { type: 'peer-left', id: 'c', reason: 'closed' });
    assert.deepEqual(await b.next(), { type: 'peer-left', id: 'c', reason: 'closed' });
    // the id is free again at once
    const c2 = await ctx.join(room, { peer: 'c' });
    assert.deepEqual(c2.welcome.peers, ['a', 'b']);
    assert.notEqual(c2.welcome.resumed, true);
    assert.deepEqual(await a.next(), { type: 'peer-joined', id: 'c' });
  });
});

describe('room mode: concurrent joins and leaves', () => {
  const ctx = useServer([]);

  it('16 peers joining at once: each learns every other exactly once, consistent with one join order', async () => {
    const room = uniq('crowd');
    const ids = Array.from({ length: 16 }, (_, i) => `p${i}`);
    const clients = await Promise.all(ids.map((peer) => ctx.join(room, { peer })));
    // Everyone has seen 15 others: earlier ones in welcome.peers, later ones as peer-joined.
    for (const c of clients) {
      const seen = [...c.welcome.peers];
      while (seen.length < 15) {
        const m = await c.next();
        assert.equal(m.type, 'peer-joined', `${c.id}: unexpected ${JSON.stringify(m)}`);
        seen.push(m.id);
      }
      assert.deepEqual([...seen].sort(), ids.filter((x) => x !== c.id).sort(), `${c.id} saw ${JSON.stringify(seen)}`);
      await c.expectQuiet();
    }
    // One global order: X before Y in someone's welcome means Y never lists X as later.
    const position = new Map();
    const longest = clients.reduce((best, c) => (c.welcome.peers.length > best.welcome.peers.length ? c : best));
    longest.welcome.peers.forEach((id, i) => position.set(id, i));
    position.set(longest.id, longest.welcome.peers.length);
    assert.equal(position.size, 16, 'the last joiner lists all 15 others');
    for (const c of clients) {
      const order = c.welcome.peers.map((id) => position.get(id));
      assert.deepEqual(order, [...order].sort((x, y) => x - y), `${c.id}: welcome.peers not oldest first`);
      for (const id of c.welcome.peers) assert.ok(position.get(id) < position.get(c.id), `${id} listed as older than ${c.id}`);
    }
  });

  it('peers leaving at once: each remaining peer gets exactly one peer-left per leaver', async () => {
    const room = uniq('crowd');
    const clients = [];
    for (let i = 0; i < 8; i += 1) clients.push(await ctx.join(room, { peer: `q${i}` }));
    for (const [i, c] of clients.entries()) for (let k = i + 1; k < 8; k += 1) await c.nextOfType('peer-joined');
    const leaving = clients.slice(0, 4);
    const staying = clients.slice(4);
    await Promise.all(leaving.map((c) => c.close()));
    for (const c of staying) {
      const left = [];
      for (let k = 0; k < 4; k += 1) {
        const m = await c.next();
        assert.equal(m.type, 'peer-left');
        assert.equal(m.reason, 'closed');
        left.push(m.id);
      }
      assert.deepEqual(left.sort(), ['q0', 'q1', 'q2', 'q3']);
      await c.expectQuiet();
    }
  });

  it('a close frame with code 1001 (browser navigating away) is a clean leave: reason "closed"', async () => {
    const room = uniq('away');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    await b.close(1001);
    assert.deepEqual(await a.next(), { type: 'peer-left', id: 'B', reason: 'closed' });
  });
});

describe('room mode: relay', () => {
  const ctx = useServer([]);

  async function pair(prefix = 'relay') {
    const room = uniq(prefix);
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    assert.deepEqual(await a.next(), { type: 'peer-joined', id: 'B' });
    return { room, a, b };
  }

  it('a message with id goes to that peer with id rewritten to the sender', async () => {
    const { a, b } = await pair();
    a.send({ type: 'offer', id: 'B', description: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n' });
    assert.deepEqual(await b.next(), { type: 'offer', id: 'A', description: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n' });
    b.send({ type: 'answer', id: 'A', description: 'v=0' });
    assert.deepEqual(await a.next(), { type: 'answer', id: 'B', description: 'v=0' });
    await a.expectQuiet();
  });

  it('relayed bytes are identical except the id value (whitespace, key order, numbers)', async () => {
    const { a, b } = await pair();
    const templates = [
      '{ "type" : "role",  "id":"%ID%",\t"seed":0.1234567890123456789 }',
      '{"seed":0.30000000000000004,"id":"%ID%","type":"role"}',
      '{"type":"candidate","id":"%ID%","candidate":"candidate:1 1 UDP 2122252543 192.0.2.1 54400 typ host","mid":"0"}',
      '{"type":"candidate","id":"%ID%","candidate":"","mid":"0"}',
      '{"type":"candidate","id":"%ID%","candidate":null,"mid":"0"}',
      '{"type":"x","id":"%ID%","n":[-0.0,1E-7,123456789012345678901234567890,2.5e+10],"s":"\\u00e9\\ud83d\\ude00 é 😀","o":{"id":"C","k":[{}]}}',
      '{"type":"bye","id":"%ID%"}',
      '{\n  "type": "offer",\n  "description": "v=0\\r\\n",\n  "id":"%ID%",\n  "extra": true\n}',
    ];
    for (const tpl of templates) {
      a.send(tpl.replace('%ID%', 'B'));
      const raw = await b.nextRaw();
      assert.equal(
        raw.replace(/"id"\s*:\s*"A"/, '"id":"%ID%"'),
        tpl,
        `relayed frame differs beyond the id value:\n sent ${tpl.replace('%ID%', 'B')}\n got  ${raw}`,
      );
      assert.match(raw, /"id"\s*:\s*"A"/);
    }
  });

  it('numbers outside double range are relayed untouched (server does not interpret payloads)', async () => {
    const { a, b } = await pair();
    const sent = '{"type":"x","id":"B","big":1e400,"tiny":1e-400,"long":0.12345678901234567890123456789012345678901234567890}';
    a.send(sent);
    assert.equal(await b.nextRaw(), sent.replace('"id":"B"', '"id":"A"'));
  });

  it('role seeds round-trip bit for bit', async () => {
    const { a, b } = await pair();
    const seeds = ['0.1234567890123456789', '0.30000000000000004', '0.9999999999999999', '5e-324', '0.5', '0'];
    for (const s of seeds) {
      a.send(`{"type":"role","id":"B","seed":${s}}`);
      const raw = await b.nextRaw();
      assert.equal(raw, `{"type":"role","id":"A","seed":${s}}`);
    }
  });

  it('a client cannot forge the sender id', async () => {
    const room = uniq('forge');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    const c = await ctx.join(room, { peer: 'C' });
    await a.nextOfType('peer-joined');
    await a.nextOfType('peer-joined');
    await b.nextOfType('peer-joined');

    // id in the payload (nested or inside a string) is not the envelope id
    a.send('{"type":"offer","id":"B","from":"C","nested":{"id":"C"},"note":"\\"id\\":\\"C\\""}');
    const got = await b.next();
    assert.equal(got.id, 'A');
    assert.deepEqual(got.nested, { id: 'C' });
    assert.equal(got.note, '"id":"C"');

    // broadcast containing a nested id: the envelope id is still the sender
    a.send('{"type":"note","nested":{"id":"C"}}');
    const gb = await b.next();
    const gc = await c.next();
    assert.equal(gb.id, 'A');
    assert.equal(gc.id, 'A');

    // a duplicated top-level id is a bad message, delivered to nobody
    a.send('{"type":"offer","id":"B","id":"C","description":"x"}');
    await expectErrorFrame(a, 'bad-message');
    await b.expectQuiet();
    await c.expectQuiet();
    // a duplicated top-level type too
    a.send('{"type":"offer","type":"answer","id":"B"}');
    await expectErrorFrame(a, 'bad-message');
    await b.expectQuiet();
  });

  it('unknown target: error peer-not-found carrying the target in id', async () => {
    const { a, b } = await pair();
    a.send({ type: 'offer', id: 'ghost', description: 'x' });
    const err = await expectErrorFrame(a, 'peer-not-found', { id: 'ghost' });
    assert.equal(err.id, 'ghost');
    await b.expectQuiet();
  });

  it('sending to yourself is peer-not-found', async () => {
    const { a, b } = await pair();
    a.send({ type: 'offer', id: 'A', description: 'x' });
    await expectErrorFrame(a, 'peer-not-found', { id: 'A' });
    await a.expectQuiet();
    await b.expectQuiet();
  });

  it('broadcast (no id) reaches all others with id inserted first, not the sender', async () => {
    const room = uniq('bcast');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    const c = await ctx.join(room, { peer: 'C' });
    await a.nextOfType('peer-joined');
    await a.nextOfType('peer-joined');
    await b.nextOfType('peer-joined');
    const sent = '{ "type":"hello",  "seed":0.1234567890123456789, "z":{"a":[1,2]} }';
    a.send(sent);
    for (const peer of [b, c]) {
      const raw = await peer.nextRaw();
      const parsed = JSON.parse(raw);
      assert.deepEqual(Object.keys(parsed)[0], 'id', `id is the first member: ${raw}`);
      assert.equal(parsed.id, 'A');
      assert.equal(raw.replace(/^\{\s*"id"\s*:\s*"A"\s*,/, '{'), sent, `bytes after the inserted id differ: ${raw}`);
    }
    await a.expectQuiet();
    await b.expectQuiet();
    await c.expectQuiet();
  });

  it('broadcast when alone in the room: nothing happens, no error', async () => {
    const a = await ctx.join(uniq('alone'), { peer: 'A' });
    a.send({ type: 'hello' });
    await a.expectQuiet();
  });

  it('bye and other canonical types are relayed like any message', async () => {
    const { a, b } = await pair();
    a.send({ type: 'candidate', id: 'B', candidate: '', mid: '0' });
    assert.deepEqual(await b.next(), { type: 'candidate', id: 'A', candidate: '', mid: '0' });
    a.send({ type: 'bye', id: 'B' });
    assert.deepEqual(await b.next(), { type: 'bye', id: 'A' });
  });
});

describe('room mode: ping/pong and reserved types', () => {
  const ctx = useServer([]);

  it('ping without t gets {"type":"pong"}', async () => {
    const a = await ctx.join(uniq('ping'), { peer: 'A' });
    a.send('{"type":"ping"}');
    assert.deepEqual(await a.next(), { type: 'pong' });
  });

  it('ping with t gets pong with t echoed exactly as sent', async () => {
    const a = await ctx.join(uniq('ping'), { peer: 'A' });
    const cases = ['123.456e2', '0.1234567890123456789', '"str"', '{"k":[1, 2]}', '-0', '1E+2', 'null'];
    for (const t of cases) {
      a.send(`{"type":"ping","t":${t}}`);
      const raw = await a.nextRaw();
      const escaped = t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      assert.match(raw, new RegExp(`"t"\\s*:\\s*${escaped}\\s*[,}]`), `t not echoed raw: sent ${t}, got ${raw}`);
      const parsed = JSON.parse(raw);
      assert.equal(parsed.type, 'pong');
      assert.deepEqual(Object.keys(parsed).sort(), ['t', 'type']);
    }
  });

  it('ping is answered by the server, never relayed (even with an id)', async () => {
    const room = uniq('ping');
    const a = await ctx.join(room, { peer: 'A' });
    const b = await ctx.join(room, { peer: 'B' });
    await a.nextOfType('peer-joined');
    const relayedBefore = (await ctx.metrics()).sum('rendezvous_messages_relayed_total');
    a.send({ type: 'ping', id: 'B', t: 7 });
    const pong = await a.next();
    assert.equal(pong.type, 'pong');
    assert.equal(pong.t, 7);
    await b.expectQuiet();
    const relayedAfter = (await ctx.metrics()).sum('rendezvous_messages_relayed_total');
    assert.equal(relayedAfter, relayedBefore, 'pings are not counted as relayed messages');
  });

  for (const type of RESERVED) {
    it(`client-sent "${type}" gets error reserved-type and is not relayed`, async () => {
      const room = uniq('reserved');
      const a = await ctx.join(room, { peer: 'A' });
      const b = await ctx.join(room, { peer: 'B' });
      await a.nextOfType('peer-joined');
      a.send({ type, id: 'B', code: 'x', message: 'y' });
      await expectErrorFrame(a, 'reserved-type');
      a.send({ type });
      await expectErrorFrame(a, 'reserved-type');
      await b.expectQuiet();
      await a.expectQuiet();
    });
  }
});
