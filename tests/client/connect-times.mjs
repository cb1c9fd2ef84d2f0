// Connect times, for the record (not a ctest test): N runs of two
// rendezvous-peer processes, and N runs of rendezvous-peer <-> libdatachannel;
// prints the median and range of "data channel open" and "first message"
// times, measured by the C++ peer from its own start.
//
//   RENDEZVOUS_SERVER=build/server/rendezvous-server \
//   RENDEZVOUS_PEER=build/client/rendezvous-peer node tests/client/connect-times.mjs [N]
import { startServer, startPeer, cleanup, median } from './lib/harness.mjs';
import { loadNdc, startNdcPeer } from './lib/ndc-peer.mjs';

const N = Number(process.argv[2] ?? 20);
const ndc = await loadNdc();
const server = await startServer();
const stats = (xs) => `median ${median(xs)} ms (min ${Math.min(...xs)}, max ${Math.max(...xs)}, n=${xs.length})`;

const cppOpen = [], cppMsg = [];
for (let i = 0; i < N; ++i) {
  const room = `ct-cpp-${i}`;
  const a = startPeer(server.url, room, ['--id', 'a', '--send', 'x', '--exit-after', '1', '--timeout', '60']);
  await a.event('joined');
  const b = startPeer(server.url, room, ['--id', 'b', '--send', 'y', '--exit-after', '1', '--timeout', '60']);
  const open = await b.event('connected');
  const msg = await b.event('message');
  cppOpen.push(open.ms);
  cppMsg.push(msg.t_ms);
  await Promise.all([a.exit(), b.exit()]);
}
console.log(`C++ <-> C++, joiner's view: channel open ${stats(cppOpen)}; first message ${stats(cppMsg)}`);

if (ndc) {
  for (const cppRole of ['polite', 'impolite']) {
    const open = [], msg = [];
    for (let i = 0; i < N; ++i) {
      const room = `ct-ldc-${cppRole}-${i}`;
      const js = startNdcPeer(ndc, server.url, room, 'ldc',
        { seed: cppRole === 'impolite' ? 1e-9 : 0.999999999, send: 'z' });
      await js.waitFor((e) => e.event === 'joined', 30_000, 'welcome');
      const p = startPeer(server.url, room, ['--id', 'cpp', '--send', 'w', '--exit-after', '1', '--timeout', '60']);
      open.push((await p.event('connected')).ms);
      msg.push((await p.event('message')).t_ms);
      await p.exit();
      js.close();
    }
    console.log(`C++ (${cppRole}) <-> libdatachannel: channel open ${stats(open)}; first message ${stats(msg)}`);
  }
}
await server.kill();
cleanup();
// Not ndc.cleanup(): after 40 closed PeerConnections it crashed node at exit.
process.exit(0);
