// One libdatachannel peer as its own process, so that it can run inside a
// network namespace (`ip netns exec NS node peer.mjs ...`):
//
//   node peer.mjs --base ws://HOST:PORT --room R --peer ID --remote ID
//                 --role offer|answer --policy relay|all --until open|gathered|failed
//                 [--timeout-ms 15000]
//
// It joins the room (printing {"event":"welcome",...} as one JSON line as
// soon as it has its welcome), builds a PeerConnection from the welcome's
// iceServers, and then:
//   --role offer   creates the data channel (so it makes the offer)
//   --role answer  waits for the offer of --remote
//   --until open     the offerer sends "hello from ID" when the channel opens,
//                    the answerer replies "hello from ID"; the offerer then
//                    sends a `bye` through the server and the answerer waits
//                    for it before it leaves.
//   --until gathered stop once ICE gathering is complete (report candidates)
//   --until failed   stop once the peer connection state is `failed`
// and prints {"event":"result",...} (welcome, received, local/remote
// candidates, selected pair, states) on one line. Exit 0 when --until was
// reached (and, for `gathered`/`failed`, the channel never opened), 1 on
// a deadline or an unexpected outcome (the result line says which).

import { parseArgs } from 'node:util';

import { cleanup, DcPeer, deferred, initLogger, joinRoom, raceDeadline, toRtcIceServers } from './dcpair.mjs';

const { values: o } = parseArgs({
  options: {
    base: { type: 'string' },
    room: { type: 'string' },
    peer: { type: 'string' },
    remote: { type: 'string' },
    role: { type: 'string' },
    policy: { type: 'string', default: 'relay' },
    until: { type: 'string', default: 'open' },
    'timeout-ms': { type: 'string', default: '15000' },
  },
});
for (const k of ['base', 'room', 'peer', 'remote', 'role']) {
  if (!o[k]) {
    process.stderr.write(`peer.mjs: --${k} is required\n`);
    process.exit(2);
  }
}
const deadline = Date.now() + Number(o['timeout-ms']);
const print = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
// RENDEZVOUS_TEST_LOG=1: libdatachannel's own log (ICE gathering, TURN
// allocation, connectivity checks) on stderr, each line with ms since start,
// so a failed pair can be laid next to coturn's log.
const t0 = Date.now();
const trace = (what) => process.stderr.write(`+${Date.now() - t0}ms ${what}\n`);
// libdatachannel's errors always go into the result (`libErrors`): the test
// tells libjuice's duplicate-401 race (see turn.test.mjs) from a real
// failure by them.
const libErrors = [];
const verbose = process.env.RENDEZVOUS_TEST_LOG === '1';
initLogger(verbose ? 'Verbose' : 'Error', (level, msg) => {
  if (verbose) trace(`[ndc ${level}] ${msg}`);
  if (/^(Error|Fatal)$/i.test(String(level)) && libErrors.length < 20) libErrors.push(String(msg));
});

let signaling;
let peer;
const result = { event: 'result', peer: o.peer, until: o.until, ok: false };
try {
  signaling = await joinRoom(o.base, o.room, o.peer);
  result.welcome = signaling.welcome;
  print({ event: 'welcome', welcome: signaling.welcome });

  const bye = deferred();
  peer = new DcPeer(o.peer, signaling, o.remote, {
    iceServers: toRtcIceServers(signaling.welcome.iceServers),
    iceTransportPolicy: o.policy,
  });
  peer.onOtherSignal = (msg) => {
    if (msg.id === o.remote && (msg.type === 'bye' || msg.type === 'peer-left')) bye.resolve(msg.type);
  };
  if (o.role === 'offer') peer.attach(peer.pc.createDataChannel('rendezvous-test'));
  const diag = () => peer.describe();

  if (o.until === 'open') {
    const failure = Promise.race([
      peer.failed.promise.then((s) => `peer connection ${s}`),
      // nothing to connect with: fail now rather than at the deadline
      peer.gathering.promise.then((c) => (c.length === 0 ? 'gathering complete without any candidate' : new Promise(() => {}))),
    ]).then((why) => {
      throw new Error(why);
    });
    const work = (async () => {
      if (o.role === 'offer') {
        await peer.channelOpen.promise;
        peer.dc.sendMessage(`hello from ${o.peer}`);
        result.received = await peer.received.promise;
        result.selectedAtMessage = peer.pc.getSelectedCandidatePair();
        signaling.send({ type: 'bye', id: o.remote });
      } else {
        result.received = await peer.received.promise;
        result.selectedAtMessage = peer.pc.getSelectedCandidatePair();
        peer.dc.sendMessage(`hello from ${o.peer}`);
        result.byeBy = await bye.promise;
      }
    })();
    await raceDeadline(Promise.race([work, failure]), deadline, `${o.peer}: data channel`, diag);
    result.ok = true;
  } else if (o.until === 'gathered') {
    await raceDeadline(peer.gathering.promise, deadline, `${o.peer}: gathering`, diag);
    result.ok = !peer.everOpen;
  } else if (o.until === 'failed') {
    await raceDeadline(peer.failed.promise, deadline, `${o.peer}: failure`, diag);
    result.ok = !peer.everOpen;
  } else {
    throw new Error(`unknown --until ${o.until}`);
  }
} catch (err) {
  result.error = err.message;
} finally {
  if (peer) Object.assign(result, peer.describe());
  result.libErrors = libErrors;
  print(result);
  peer?.close();
  await signaling?.close();
  cleanup();
}
process.exit(result.ok ? 0 : 1);
