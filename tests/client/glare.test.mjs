// Glare: both peers offer at the same moment (--force-glare: the impolite side
// also creates a channel and offers at once). They still connect once: the
// impolite side ignores the polite side's offer, the polite side rolls its
// own back and answers.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startPeer, cleanup } from './lib/harness.mjs';

after(cleanup);

test('offers collide and the peers still connect once, the polite side rolling back', async (t) => {
  const server = await startServer();
  const args = (me) => ['--id', me, '--force-glare', '--send', `hello from ${me}`, '--exit-after', '1',
    '--timeout', '60'];
  const a = startPeer(server.url, 'glare', args('a'));
  await a.event('joined');
  const b = startPeer(server.url, 'glare', args('b'));

  const roles = await Promise.all([a.event('role'), b.event('role')]);
  const [polite, impolite] = roles[0].role === 'polite' ? [a, b] : [b, a];
  assert.notEqual(roles[0].role, roles[1].role);

  await Promise.all([polite.event('rollback'), impolite.event('offer-ignored')]);
  const [ca, cb] = await Promise.all([a.event('connected'), b.event('connected')]);
  await Promise.all([a.event('message'), b.event('message')]);
  const [ea, eb] = await Promise.all([a.exit(), b.exit()]);
  assert.equal(ea.code, 0, a.stderr.join('\n'));
  assert.equal(eb.code, 0, b.stderr.join('\n'));

  // Exactly one connection each: one role, one channel, no recovery.
  for (const p of [a, b]) {
    assert.equal(p.all('role').length, 1);
    assert.equal(p.all('connected').length, 1);
    assert.equal(p.all('recovery').length, 0);
  }
  assert.equal(impolite.all('rollback').length, 0, 'the impolite side never rolls back');
  assert.equal(polite.all('offer-ignored').length, 0, 'the polite side never ignores an offer');
  t.diagnostic(`connected after ${ca.ms} / ${cb.ms} ms`);
  await server.kill();
});
