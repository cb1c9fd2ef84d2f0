// The browser module with the C++ rendezvous-peer (GStreamer webrtcbin):
// a pair that chats both ways, and a three-peer mesh of two browsers and the
// C++ peer where every pair connects. Skipped when rendezvous-peer is not
// built (RENDEZVOUS_PEER, set by run.sh from build/client/rendezvous-peer).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import {
  launchBrowser, openDemo, waitConnected, chat, waitChat, shot, uniqueRoom, stopFallback, log,
  startCppPeer, killStarted, CONNECT_MS, STEP_MS,
} from './lib/harness.mjs';

const PEER = process.env.RENDEZVOUS_PEER;
const skip = !(PEER && existsSync(PEER)) && 'rendezvous-peer is not built (set RENDEZVOUS_PEER or build build/client/rendezvous-peer)';
let browser;
before(async () => { if (!skip) browser = await launchBrowser(); });
after(async () => {
  killStarted();
  await browser?.close();
  stopFallback();
});

for (const browserRole of ['polite', 'impolite']) {
  test(`browser (${browserRole}) and rendezvous-peer (C++, webrtcbin) chat both ways`, { skip, timeout: 90_000 }, async () => {
    const room = uniqueRoom(`cpp-${browserRole}`);
    const ann = await openDemo(browser, room, `ann-cpp-${browserRole}`, { peer: 'ann' }, { role: browserRole });
    const cpp = startCppPeer(PEER, room, ['--id', 'cpp', '--send', 'hello from C++']);
    const t0 = Date.now();
    const role = await cpp.waitFor((e) => e.event === 'role' && e.peer === 'ann', CONNECT_MS, 'role');
    assert.equal(role.role, browserRole === 'polite' ? 'impolite' : 'polite');
    await waitConnected(ann, 'cpp');
    await cpp.waitFor((e) => e.event === 'connected' && e.peer === 'ann', CONNECT_MS, 'connected');
    log(`rendezvous-peer (${role.role}): connected in ${Date.now() - t0} ms`);
    assert.equal(await ann.evaluate(() => window.rendezvous.peerInfo('cpp').role), browserRole);
    await waitChat(ann, 'cpp', 'hello from C++');
    await chat(ann, 'hello from the browser');
    const got = await cpp.waitFor((e) => e.event === 'message' && e.text === 'hello from the browser', STEP_MS, 'chat message');
    assert.equal(got.peer, 'ann');
    cpp.sendLine('a line typed into rendezvous-peer');
    await waitChat(ann, 'cpp', 'a line typed into rendezvous-peer');
    await shot(`cpp-${browserRole}-1-chatted`, ann);
    const { code } = await cpp.stop();
    assert.ok(code === 0 || code === null, `rendezvous-peer exited with ${code}: ${cpp.stderr.slice(-10).join('\n')}`);
    await ann.waitForSelector('#peers li[data-peer="cpp"]', { state: 'detached', timeout: STEP_MS });
    await shot(`cpp-${browserRole}-2-left`, ann);
    await ann.context().close();
  });
}

test('offers collide (rendezvous-peer --force-glare): perfect negotiation settles it', { skip, timeout: 90_000 }, async () => {
  const room = uniqueRoom('cpp-glare');
  // With --force-glare the C++ side creates a channel and offers at once
  // whatever its role. The browser is polite, so it offers too: the offers
  // cross. The C++ side (impolite) ignores the browser's; the browser gives
  // way and answers (on a fresh connection: Chromium cannot roll back a
  // first offer that added the data channel's m-section).
  const ann = await openDemo(browser, room, 'ann-glare', { peer: 'ann' }, { role: 'polite' });
  const cpp = startCppPeer(PEER, room, ['--id', 'cpp', '--force-glare', '--send', 'glare survived']);
  const role = await cpp.waitFor((e) => e.event === 'role' && e.peer === 'ann', CONNECT_MS, 'role');
  assert.equal(role.role, 'impolite');
  await waitConnected(ann, 'cpp');
  await cpp.waitFor((e) => e.event === 'connected' && e.peer === 'ann', CONNECT_MS, 'connected');
  await waitChat(ann, 'cpp', 'glare survived');
  await chat(ann, 'and the browser too');
  await cpp.waitFor((e) => e.event === 'message' && e.text === 'and the browser too', STEP_MS, 'chat message');
  const notes = cpp.events.filter((e) => e.event === 'rollback' || e.event === 'offer-ignored').map((e) => e.event);
  log(`glare: C++ side ${role.role}; C++ events: ${notes.join(', ') || 'none'}`);
  assert.ok(notes.includes('offer-ignored'), 'the offers should have collided (the C++ side ignores the browser\'s)');
  if (process.env.RDV_DEBUG) log(JSON.stringify(cpp.events.map((e) => [e.event, e.type ?? e.state ?? e.role ?? ''])));
  await shot('cpp-glare-1-chatted', ann);
  await cpp.stop();
  await ann.context().close();
});

test('three-peer mesh: two browsers and rendezvous-peer, every pair connects', { skip, timeout: 120_000 }, async () => {
  const room = uniqueRoom('cpp-mesh');
  const ann = await openDemo(browser, room, 'cppmesh-ann', { peer: 'ann' });
  const cpp = startCppPeer(PEER, room, ['--id', 'cpp']);
  const bob = await openDemo(browser, room, 'cppmesh-bob', { peer: 'bob' });
  const t0 = Date.now();
  await Promise.all([
    waitConnected(ann, 'bob'), waitConnected(ann, 'cpp'),
    waitConnected(bob, 'ann'), waitConnected(bob, 'cpp'),
    cpp.waitFor((e) => e.event === 'connected' && e.peer === 'ann', CONNECT_MS, 'connected to ann'),
    cpp.waitFor((e) => e.event === 'connected' && e.peer === 'bob', CONNECT_MS, 'connected to bob'),
  ]);
  log(`C++ mesh: all three pairs connected in ${Date.now() - t0} ms`);
  await shot('cppmesh-1-connected', ann, bob);
  await chat(ann, 'hello mesh');
  await waitChat(bob, 'ann', 'hello mesh');
  await cpp.waitFor((e) => e.event === 'message' && e.peer === 'ann' && e.text === 'hello mesh', STEP_MS, 'ann\'s message');
  cpp.sendLine('C++ to everyone');
  await waitChat(ann, 'cpp', 'C++ to everyone');
  await waitChat(bob, 'cpp', 'C++ to everyone');
  await chat(bob, 'bob to everyone');
  await waitChat(ann, 'bob', 'bob to everyone');
  await cpp.waitFor((e) => e.event === 'message' && e.peer === 'bob' && e.text === 'bob to everyone', STEP_MS, 'bob\'s message');
  await shot('cppmesh-2-chatted', ann, bob);
  await cpp.stop();
  await ann.context().close();
  await bob.context().close();
});
