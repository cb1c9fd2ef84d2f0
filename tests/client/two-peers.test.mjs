// Two rendezvous-peer processes and the real server: opposite roles, the data
// channel opens, a message goes each way, both exit 0.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startPeer, cleanup } from './lib/harness.mjs';

after(cleanup);

test('two rendezvous-peer processes connect and exchange a message each way', async (t) => {
  const server = await startServer();
  const args = (me) => ['--id', me, '--send', `hello from ${me}`, '--exit-after', '1', '--timeout', '60'];
  const alice = startPeer(server.url, 'two-peers', args('alice'));
  await alice.event('joined');
  const bob = startPeer(server.url, 'two-peers', args('bob'));

  const [ra, rb] = await Promise.all([alice.event('role'), bob.event('role')]);
  assert.equal(ra.peer, 'bob');
  assert.equal(rb.peer, 'alice');
  assert.notEqual(ra.role, rb.role, 'opposite roles');
  assert.ok(['polite', 'impolite'].includes(ra.role));

  const [ca, cb] = await Promise.all([alice.event('connected'), bob.event('connected')]);
  const [ma, mb] = await Promise.all([alice.event('message'), bob.event('message')]);
  assert.deepEqual([ma.peer, ma.text], ['bob', 'hello from bob']);
  assert.deepEqual([mb.peer, mb.text], ['alice', 'hello from alice']);

  const [ea, eb] = await Promise.all([alice.exit(), bob.exit()]);
  assert.equal(ea.code, 0, alice.stderr.join('\n'));
  assert.equal(eb.code, 0, bob.stderr.join('\n'));
  t.diagnostic(`data channel open: alice ${ca.ms} ms, bob ${cb.ms} ms after start`);
  await server.kill();
});
