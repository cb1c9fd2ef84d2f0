// `node stun-probe.mjs HOST PORT TIMEOUT_MS`: sends STUN Binding requests to
// HOST:PORT (UDP) until one is answered (exit 0) or the deadline passes
// (exit 1). Run inside a network namespace to prove that a TURN server is
// reachable from there.
import { stunBinding } from './coturn.mjs';

const [host, port, timeoutMs = '5000'] = process.argv.slice(2);
const deadline = Date.now() + Number(timeoutMs);
for (;;) {
  if (await stunBinding(Number(port), 300, host)) process.exit(0);
  if (Date.now() > deadline) {
    process.stderr.write(`no STUN Binding response from ${host}:${port} within ${timeoutMs} ms\n`);
    process.exit(1);
  }
}
