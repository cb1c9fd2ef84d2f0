// The browser module with libdatachannel (node-datachannel@0.33.4) peers:
// one pair in each role, chat and a file; a libdatachannel connection that
// breaks is recovered by a fresh RTCPeerConnection (libdatachannel cannot
// ICE-restart); and a three-peer mesh of two browsers and a libdatachannel
// peer where every pair connects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launchBrowser, openDemo, waitConnected, chat, waitChat, sendFile, shot, randomBytes, uniqueRoom,
  stopFallback, myId, log, WS, DESKTOP, CONNECT_MS, STEP_MS,
} from './lib/harness.mjs';
import { loadNdc, startNdcPeer } from './lib/ndc-peer.mjs';

const ndc = await loadNdc();
const skip = !ndc && 'node-datachannel is not installed (scripts/install-deps-browser.sh)';
let browser;
const ndcPeers = [];
before(async () => { if (!skip) browser = await launchBrowser(); });
after(async () => {
  for (const p of ndcPeers) p.close();
  await browser?.close();
  stopFallback();
  ndc?.cleanup();
});

function ndcPeer(room, id, opts = {}) {
  const p = startNdcPeer(ndc, WS, room, id, { log: process.env.RDV_DEBUG ? (l) => log(l) : undefined, ...opts });
  ndcPeers.push(p);
  return p;
}

for (const ndcRole of ['polite', 'impolite']) {
  test(`browser and libdatachannel peer (libdatachannel ${ndcRole}): chat and a file`, { skip, timeout: 90_000 }, async () => {
    const room = uniqueRoom(`ldc-${ndcRole}`);
    const ann = await openDemo(browser, room, `ann-ldc-${ndcRole}`, { peer: 'ann' });
    // An extreme number gives the libdatachannel side the wanted role.
    const ldc = ndcPeer(room, 'ldc', { seed: ndcRole === 'polite' ? 1e-9 : 0.999999999 });
    const t0 = Date.now();
    const role = await ldc.waitFor((e) => e.event === 'role' && e.peer === 'ann', CONNECT_MS, 'role');
    assert.equal(role.role, ndcRole);
    await ldc.waitFor((e) => e.event === 'open' && e.peer === 'ann', CONNECT_MS, 'open channel');
    await waitConnected(ann, 'ldc');
    log(`libdatachannel ${ndcRole}: connected in ${Date.now() - t0} ms`);
    const browserRole = await ann.evaluate(() => window.rendezvous.peerInfo('ldc').role);
    assert.equal(browserRole, ndcRole === 'polite' ? 'impolite' : 'polite');
    await shot(`ldc-${ndcRole}-1-connected`, ann);

    ldc.send('ann', 'hello from libdatachannel');
    await waitChat(ann, 'ldc', 'hello from libdatachannel');
    await chat(ann, 'hello from the browser');
    await ldc.waitFor((e) => e.event === 'message' && e.text === 'hello from the browser', STEP_MS, 'chat message');

    const bytes = randomBytes(200_000, 3);
    await sendFile(ann, 'to-ldc.bin', bytes);
    const file = await ldc.waitFor((e) => e.event === 'file' && e.name === 'to-ldc.bin', CONNECT_MS, 'the file');
    assert.equal(file.size, bytes.length);
    assert.ok(file.data.equals(bytes), 'libdatachannel received different bytes');
    await shot(`ldc-${ndcRole}-2-chatted`, ann);
    ldc.close();
    await ann.context().close();
  });
}

test('a broken libdatachannel connection is recovered with a fresh RTCPeerConnection', { skip, timeout: 90_000 }, async () => {
  const room = uniqueRoom('ldc-recover');
  const ann = await openDemo(browser, room, 'ann-recover', { peer: 'ann' });
  const ldc = ndcPeer(room, 'ldc');
  await ldc.waitFor((e) => e.event === 'open' && e.peer === 'ann', CONNECT_MS, 'open channel');
  await waitConnected(ann, 'ldc');
  await ann.evaluate(() => {
    window.recoveries = [];
    window.rendezvous.on('recovery', (r) => window.recoveries.push(r));
  });
  const opensBefore = ldc.events.filter((e) => e.event === 'open').length;

  // The libdatachannel side's connection goes away (as when its process loses
  // its network state); it does not say so over signaling.
  const t0 = Date.now();
  const p = ldc.partners.get('ann');
  p.dc.close();
  p.pc.close();
  await ann.waitForFunction(() => window.recoveries.length > 0, null, { timeout: CONNECT_MS });
  const [recovery] = await ann.evaluate(() => window.recoveries);
  assert.equal(recovery.how, 'renegotiate', 'libdatachannel cannot ICE-restart: the browser must renegotiate');
  await ldc.waitFor((e) => e.event === 'open' && e.peer === 'ann' && ldc.events.filter((x) => x.event === 'open').length > opensBefore,
    CONNECT_MS, 'a new open channel');
  await waitConnected(ann, 'ldc');
  log(`libdatachannel recovery: connected again in ${Date.now() - t0} ms`);
  ldc.send('ann', 'back again');
  await waitChat(ann, 'ldc', 'back again');
  await shot('ldc-recover-1-reconnected', ann);
  ldc.close();
  await ann.context().close();
});

test('three-peer mesh: two browsers and a libdatachannel peer, every pair connects', { skip, timeout: 120_000 }, async () => {
  const room = uniqueRoom('mesh');
  const ann = await openDemo(browser, room, 'mesh-ann', { peer: 'ann' });
  const ldc = ndcPeer(room, 'ldc');
  const bob = await openDemo(browser, room, 'mesh-bob', { peer: 'bob' }, { viewport: DESKTOP });
  const t0 = Date.now();
  await Promise.all([
    waitConnected(ann, 'bob'), waitConnected(ann, 'ldc'),
    waitConnected(bob, 'ann'), waitConnected(bob, 'ldc'),
    ldc.waitFor((e) => e.event === 'open' && e.peer === 'ann', CONNECT_MS, 'channel to ann'),
    ldc.waitFor((e) => e.event === 'open' && e.peer === 'bob', CONNECT_MS, 'channel to bob'),
  ]);
  log(`mesh: all three pairs connected in ${Date.now() - t0} ms`);
  assert.equal(await ann.locator('#peers li[data-channel="open"]').count(), 2);
  assert.equal(await bob.locator('#peers li[data-channel="open"]').count(), 2);
  await shot('mesh-1-connected', ann, bob);

  // A message to everyone reaches both others.
  await chat(ann, 'hello mesh');
  await waitChat(bob, 'ann', 'hello mesh');
  await ldc.waitFor((e) => e.event === 'message' && e.peer === 'ann' && e.text === 'hello mesh', STEP_MS, 'ann\'s message');
  await chat(bob, 'bob here');
  await waitChat(ann, 'bob', 'bob here');
  await ldc.waitFor((e) => e.event === 'message' && e.peer === 'bob' && e.text === 'bob here', STEP_MS, 'bob\'s message');
  ldc.send('ann', 'ldc to ann');
  ldc.send('bob', 'ldc to bob');
  await waitChat(ann, 'ldc', 'ldc to ann');
  await waitChat(bob, 'ldc', 'ldc to bob');
  // A private message goes to one peer only.
  await chat(bob, 'just for ldc', 'ldc');
  await ldc.waitFor((e) => e.event === 'message' && e.text === 'just for ldc', STEP_MS, 'the private message');
  await shot('mesh-2-chatted', ann, bob);

  // One browser leaves: the others see it go and keep their own connection.
  const bobId = await myId(bob);
  await bob.context().close();
  await ann.waitForSelector(`#peers li[data-peer="${bobId}"]`, { state: 'detached', timeout: STEP_MS });
  await ldc.waitFor((e) => e.event === 'peer-left' && e.peer === 'bob', STEP_MS, 'peer-left bob');
  ldc.send('ann', 'still connected');
  await waitChat(ann, 'ldc', 'still connected');
  await shot('mesh-3-bob-left', ann);
  ldc.close();
  await ann.context().close();
});
