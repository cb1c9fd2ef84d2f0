// One room across several nodes over Redis: every promise of
// docs/protocol.md holds whatever node a peer is on; node loss and Redis
// outage behave as docs/scaling.md says.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';

import { expectRefused } from '../integration/lib/client.mjs';
import { uniq, waitFor } from '../integration/lib/harness.mjs';
import { Node, Redis, startCluster, stopCluster } from './lib/cluster.mjs';

function useCluster(n, extra = []) {
  const c = { redis: null, nodes: [] };
  before(async () => {
    Object.assign(c, await startCluster(n, extra));
  });
  afterEach(async () => {
    for (const node of c.nodes) await node.closeClients();
  });
  after(async () => {
    await stopCluster(c);
  });
  return c;
}

describe('rooms across two nodes', () => {
  const c = useCluster(2, ['--max-peers-per-room', '4']);

  it('welcome lists the peers of every node, oldest first; peer-joined reaches the other node once', async () => {
    const [a, b] = c.nodes;
    const room = uniq('r');
    const alice = await a.join(room, { peer: 'alice' });
    const bob = await b.join(room, { peer: 'bob' });
    assert.deepEqual(bob.welcome.peers, ['alice']);
    assert.deepEqual(await alice.next(), { type: 'peer-joined', id: 'bob' });
    const carol = await a.join(room, { peer: 'carol' });
    assert.deepEqual(carol.welcome.peers, ['alice', 'bob']);
    assert.deepEqual(await bob.next(), { type: 'peer-joined', id: 'carol' });
    assert.deepEqual(await alice.next(), { type: 'peer-joined', id: 'carol' });
    await alice.expectQuiet(300);
    await bob.expectQuiet(300);
  });

  it('relays across nodes with the sender id written by the server, in order, once', async () => {
    const [a, b] = c.nodes;
    const room = uniq('r');
    const alice = await a.join(room, { peer: 'alice' });
    const bob = await b.join(room, { peer: 'bob' });
    await alice.nextOfType('peer-joined');
    for (let i = 0; i < 50; i += 1) alice.send({ type: 'offer', id: 'bob', n: i });
    for (let i = 0; i < 50; i += 1) {
      const m = await bob.next();
      assert.deepEqual(m, { type: 'offer', id: 'alice', n: i });
    }
    bob.send({ type: 'answer', id: 'alice', sdp: 'x' });
    assert.deepEqual(await alice.next(), { type: 'answer', id: 'bob', sdp: 'x' });
    await bob.expectQuiet(300);
  });

  it('a message without id reaches every other peer of the room once, on both nodes', async () => {
    const [a, b] = c.nodes;
    const room = uniq('r');
    const p1 = await a.join(room, { peer: 'p1' });
    const p2 = await a.join(room, { peer: 'p2' });
    const p3 = await b.join(room, { peer: 'p3' });
    const p4 = await b.join(room, { peer: 'p4' });
    for (const p of [p1, p1, p1, p2, p2, p3]) await p.nextOfType('peer-joined');
    p1.send({ type: 'hello', seq: 1 });
    for (const p of [p2, p3, p4]) assert.deepEqual(await p.next(), { type: 'hello', id: 'p1', seq: 1 });
    for (const p of [p1, p2, p3, p4]) await p.expectQuiet(300);
  });

  it('peer-not-found only for an id on no node', async () => {
    const [a, b] = c.nodes;
    const room = uniq('r');
    const alice = await a.join(room, { peer: 'alice' });
    await b.join(room, { peer: 'bob' });
    await alice.nextOfType('peer-joined');
    alice.send({ type: 'offer', id: 'nobody' });
    const err = await alice.next();
    assert.equal(err.type, 'error');
    assert.equal(err.code, 'peer-not-found');
  });

  it('peer-left reaches the other node with its reason', async () => {
    const [a, b] = c.nodes;
    const room = uniq('r');
    const alice = await a.join(room, { peer: 'alice' });
    const bob = await b.join(room, { peer: 'bob' });
    await alice.nextOfType('peer-joined');
    await bob.close();
    assert.deepEqual(await alice.next(), { type: 'peer-left', id: 'bob', reason: 'closed' });
  });

  it('peers of a room on one node relay without Redis: no message published', async () => {
    const [a, b] = c.nodes;
    const room = uniq('local');
    const alice = await a.join(room, { peer: 'alice' });
    const bob = await a.join(room, { peer: 'bob' });
    await alice.nextOfType('peer-joined');
    const sent = async () => (await a.metrics()).sum('rendezvous_backplane_messages_total', { direction: 'sent' });
    const before = await sent();
    for (let i = 0; i < 20; i += 1) alice.send({ type: 'offer', id: 'bob', n: i });
    for (let i = 0; i < 20; i += 1) assert.deepEqual(await bob.next(), { type: 'offer', id: 'alice', n: i });
    alice.send({ type: 'hello' });
    assert.deepEqual(await bob.next(), { type: 'hello', id: 'alice' });
    assert.equal(await sent(), before, 'a same-node message went through Redis');
    // once the room spans two nodes, a message to the other node does
    const carol = await b.join(room, { peer: 'carol' });
    await alice.nextOfType('peer-joined');
    alice.send({ type: 'offer', id: 'carol' });
    assert.deepEqual(await carol.next(), { type: 'offer', id: 'alice' });
    assert.equal(await sent(), before + 1);
    const m = await a.metrics();
    assert.equal(m.sum('rendezvous_backplane_up'), 1);
    // the gauge follows the heartbeats (every 200 ms here)
    await waitFor(async () => (await a.metrics()).sum('rendezvous_backplane_nodes_alive') === 2,
      { what: 'nodes_alive 2 on node 1' });
  });

  it('a resume on the other node closes a still-open old connection with 4409', async () => {
    const [a, b] = c.nodes;
    const room = uniq('half');
    const alice = await a.join(room, { peer: 'alice' });
    const bob = await b.join(room, { peer: 'bob' });
    await alice.nextOfType('peer-joined');
    const back = await b.join(room, { peer: 'alice', resume: alice.welcome.resume });
    assert.equal(back.welcome.resumed, true);
    const info = await alice.waitClosed();
    assert.equal(info.code, 4409);
    bob.send({ type: 'offer', id: 'alice' });
    assert.deepEqual(await back.next(), { type: 'offer', id: 'bob' });
    await bob.expectQuiet(300);
  });

  it('id-taken and room-full count every node, even for joins in the same instant', async () => {
    const [a, b] = c.nodes;
    for (let round = 0; round < 10; round += 1) {
      const room = uniq('race');
      const tries = await Promise.allSettled([
        a.connect(`/rooms/${room}?peer=alice`), b.connect(`/rooms/${room}?peer=alice`),
      ]);
      const clients = tries.filter((t) => t.status === 'fulfilled').map((t) => t.value);
      const first = await Promise.all(clients.map((cl) => cl.next()));
      const welcomed = first.filter((m) => m.type === 'welcome');
      const taken = first.filter((m) => m.type === 'error' && m.code === 'id-taken');
      assert.equal(welcomed.length, 1, `round ${round}: ${JSON.stringify(first)}`);
      assert.equal(taken.length, 1, `round ${round}: ${JSON.stringify(first)}`);
    }
    const room = uniq('full');
    const joins = [];
    for (let i = 0; i < 5; i += 1) {
      joins.push(a.connect(`/rooms/${room}?peer=a${i}`));
      joins.push(b.connect(`/rooms/${room}?peer=b${i}`));
    }
    const clients = await Promise.all(joins);
    const first = await Promise.all(clients.map((cl) => cl.next()));
    const welcomed = first.filter((m) => m.type === 'welcome').length;
    const full = first.filter((m) => m.type === 'error' && m.code === 'room-full').length;
    assert.equal(welcomed, 4, JSON.stringify(first));
    assert.equal(full, 6, JSON.stringify(first));
  });

  it('libdatachannel mode: a lobby id is unique over the nodes, and relayed across them', async () => {
    const [a, b] = c.nodes;
    const id = uniq('lob');
    const one = await a.lobby(id);
    const dup = await b.lobby(id);
    await expectRefused(dup, 'id-taken', 4409);
    const other = await b.lobby(`${id}-x`);
    other.send({ id, type: 'offer', description: 'sdp' });
    assert.deepEqual(await one.next(), { id: `${id}-x`, type: 'offer', description: 'sdp' });
    one.send({ id: `${id}-x`, type: 'answer', description: 'sdp2' });
    assert.deepEqual(await other.next(), { id, type: 'answer', description: 'sdp2' });
    await one.close();
    // freed everywhere once closed
    await waitFor(async () => {
      const again = await b.lobby(id);
      const closed = await Promise.race([again.closed, new Promise((r) => setTimeout(() => r(null), 200))]);
      if (closed) return false;
      return true;
    }, { timeoutMs: 3000, what: 'lobby id free on the other node' });
  });

  it('a dropped peer resumes on the other node: resumed, held messages in order, others see nothing', async () => {
    const [a, b] = c.nodes;
    const room = uniq('res');
    const alice = await a.join(room, { peer: 'alice' });
    const bob = await b.join(room, { peer: 'bob' });
    await alice.nextOfType('peer-joined');
    const token = alice.welcome.resume;
    alice.terminate();
    await waitFor(async () => (await a.metrics()).sum('rendezvous_connections') === 0, { what: 'drop seen' });
    for (let i = 0; i < 5; i += 1) bob.send({ type: 'candidate', id: 'alice', n: i });
    await bob.roundTrip();
    const back = await b.join(room, { peer: 'alice', resume: token });
    assert.equal(back.welcome.resumed, true);
    assert.deepEqual(back.welcome.peers, ['bob']);
    for (let i = 0; i < 5; i += 1) assert.deepEqual(await back.next(), { type: 'candidate', id: 'bob', n: i });
    bob.send({ type: 'candidate', id: 'alice', n: 5 });
    assert.deepEqual(await back.next(), { type: 'candidate', id: 'bob', n: 5 });
    back.send({ type: 'answer', id: 'bob' });
    assert.deepEqual(await bob.next(), { type: 'answer', id: 'alice' });
    await bob.expectQuiet(300);
    // the token was good once
    const again = await a.connect(`/rooms/${room}?peer=alice&resume=${token}`);
    const m = await again.next();
    assert.equal(m.code, 'id-taken');
  });
});

describe('node loss', () => {
  const c = useCluster(3, ['--reconnect-grace-ms', '1500']);

  it('a SIGKILLed node: its peers are held for the grace, may resume elsewhere, then peer-left timeout', async () => {
    const [a, b, dead] = c.nodes;
    const room = uniq('loss');
    const alice = await a.join(room, { peer: 'alice' });
    const bob = await dead.join(room, { peer: 'bob' });
    const carol = await dead.join(room, { peer: 'carol' });
    await alice.nextOfType('peer-joined');
    await alice.nextOfType('peer-joined');
    const lobbyId = uniq('lob');
    await dead.lobby(lobbyId);
    const killedAt = Date.now();
    await dead.kill('SIGKILL');
    // restarted at once with the same node id: a new incarnation, which
    // must neither keep bob's place alive nor take it over
    const again = new Node(c.redis, dead.name, ['--reconnect-grace-ms', '1500']);
    await again.start();
    await again.ready();
    c.nodes.push(again);
    // carol comes back on b within the grace: nobody sees her leave
    // the old incarnation leaves the node list once a survivor reaps it
    await waitFor(() => (c.redis.cli('ZRANGE', 'rendezvous:nodes', '0', '-1') ?? '')
      .split('\n').filter((n) => n.startsWith(`${dead.name}~`)).length === 1,
    { timeoutMs: 5000, what: 'the dead incarnation reaped' });
    const back = await b.join(room, { peer: 'carol', resume: carol.welcome.resume });
    assert.equal(back.welcome.resumed, true);
    const left = await alice.next(5000);
    assert.deepEqual(left, { type: 'peer-left', id: 'bob', reason: 'timeout' });
    const took = Date.now() - killedAt;
    assert.ok(took >= 1500, `peer-left after ${took} ms, before the grace`);
    await alice.expectQuiet(500);
    // the lobby id is free again
    const l = await b.lobby(lobbyId);
    await l.expectQuiet(300);
    assert.equal(l.closeInfo, null);
    // bob's id is free too
    const bob2 = await again.join(room, { peer: 'bob' });
    assert.deepEqual(bob2.welcome.peers, ['alice', 'carol']);
    void bob;
  });
});

describe('Redis outage and restart', () => {
  it('readyz 503, joins unavailable, same-node relay goes on; after a restart empty, all comes back', async () => {
    const c = await startCluster(2);
    try {
      const [a, b] = c.nodes;
      const room = uniq('out');
      const alice = await a.join(room, { peer: 'alice' });
      const bob = await b.join(room, { peer: 'bob' });
      const amy = await a.join(room, { peer: 'amy' });
      await alice.nextOfType('peer-joined');
      await alice.nextOfType('peer-joined');
      await bob.nextOfType('peer-joined');
      // a room only node a has: node b knows it from Redis alone
      const solo = uniq('solo');
      const sam = await a.join(solo, { peer: 'sam' });
      await c.redis.kill('SIGKILL');
      const lostAt = Date.now();
      await waitFor(async () => (await a.http('/readyz')).status === 503, { timeoutMs: 5000, what: 'readyz 503' });
      assert.ok(Date.now() - lostAt < 5000);
      assert.equal((await a.http('/healthz')).status, 200);
      alice.send({ type: 'offer', id: 'amy' });
      assert.deepEqual(await amy.next(), { type: 'offer', id: 'alice' });
      alice.send({ type: 'offer', id: 'bob' });
      await alice.roundTrip();
      const refused = await a.connect(`/rooms/${room}?peer=zed`);
      await expectRefused(refused, 'unavailable', 4503);
      await waitFor(async () => (await a.metrics()).sum('rendezvous_backplane_dropped_total') >= 1,
        { what: 'the cross-node drop counted' });
      // back, empty
      await c.redis.start();
      const backAt = Date.now();
      await Promise.all(c.nodes.map((n) => n.ready(10000)));
      assert.ok(Date.now() - backAt < 10000);
      // the places were put back: a newcomer on the other node sees them,
      // and their ids are still taken
      await waitFor(async () => {
        const probe = await b.join(solo, { peer: `probe${Date.now()}` });
        const ok = probe.welcome.peers.includes('sam');
        await probe.close();
        return ok;
      }, { timeoutMs: 5000, what: 'sam back in Redis' });
      const dup = await b.connect(`/rooms/${solo}?peer=sam`);
      await expectRefused(dup, 'id-taken', 4409);
      const zed = await b.join(room, { peer: 'zed' });
      assert.deepEqual([...zed.welcome.peers].sort(), ['alice', 'amy', 'bob']);
      await waitFor(async () => {
        alice.send({ type: 'ping-x', id: 'bob' });
        const m = await bob.next(300).catch(() => null);
        return m && m.type === 'ping-x';
      }, { timeoutMs: 5000, what: 'cross-node relay after the restart' });
      void sam;
    } finally {
      await stopCluster(c);
    }
  });

  it('a node started before Redis retries, and is ready once Redis answers', async () => {
    const redis = new Redis();
    const node = new Node(redis, `early-${process.pid}`);
    await node.start();
    try {
      assert.equal((await node.http('/readyz')).status, 503);
      await waitFor(() => /retrying/.test(node.server.log()), { what: 'the retry log line' });
      await redis.start();
      await node.ready(10000);
      const p = await node.join(uniq('late'), { peer: 'p' });
      assert.equal(p.welcome.type, 'welcome');
    } finally {
      await node.closeClients();
      await node.server.stop({ timeoutMs: 5000 });
      await redis.stop();
    }
  });
});
