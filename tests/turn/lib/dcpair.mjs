// Two libdatachannel peers (node-datachannel) that meet through a
// rendezvous-server room, take their ICE servers from their own `welcome`,
// signal offer/answer/candidates through the server, open a data channel and
// exchange one message each way. Used by turn.test.mjs (relay-only ICE through
// coturn) and by docker/test-container.sh (through a container's published
// port), so it depends only on this folder's node_modules.
//
// Every wait is an event with a deadline; nothing sleeps.

import nodeDataChannel from 'node-datachannel';
import WebSocket from 'ws';

/**
 * welcome.iceServers (RTCIceServer form: {urls, username?, credential?}) to
 * libdatachannel's RtcConfig.iceServers. TURN entries become objects, because
 * the URL form `turn:user:pass@host` cannot hold a username with a colon (the
 * REST username is `<expiry>:<peer id>`).
 */
export function toRtcIceServers(iceServers) {
  const out = [];
  for (const server of iceServers ?? []) {
    const urls = Array.isArray(server.urls) ? server.urls : [server.urls];
    for (const url of urls) {
      const m = /^(stuns?|turns?):(\[[^\]]+\]|[^:?]+)(?::(\d+))?(?:\?transport=(udp|tcp))?$/i.exec(url);
      if (!m) throw new Error(`cannot use ICE server URL ${JSON.stringify(url)}`);
      const scheme = m[1].toLowerCase();
      const hostname = m[2].replace(/^\[|\]$/g, '');
      if (scheme.startsWith('stun')) {
        out.push(url);
        continue;
      }
      const tls = scheme === 'turns';
      const transport = (m[4] ?? 'udp').toLowerCase();
      out.push({
        hostname,
        port: Number(m[3] ?? (tls ? 5349 : 3478)),
        username: server.username,
        password: server.credential,
        relayType: tls ? 'TurnTls' : transport === 'tcp' ? 'TurnTcp' : 'TurnUdp',
      });
    }
  }
  return out;
}

/** A signaling connection with a queue of parsed frames. */
export class SignalingClient {
  constructor(url, { label = url, wsOptions = {} } = {}) {
    this.label = label;
    this.queue = [];
    this.handlers = new Set();
    this.closeInfo = null;
    this.ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 5000, ...wsOptions });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', (err) => reject(new Error(`${label}: WebSocket open failed: ${err.message}`)));
    });
    this.opened.catch(() => {});
    this.ws.on('error', () => {});
    this.ws.on('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString() };
      for (const h of [...this.handlers]) h(null);
    });
    this.ws.on('message', (data) => {
      let msg;
      try {
        msg = JSON.parse(data.toString('utf8'));
      } catch {
        msg = { type: '<invalid json>', raw: data.toString('utf8') };
      }
      if (this.onMessage) this.onMessage(msg);
      else this.queue.push(msg);
      for (const h of [...this.handlers]) h(msg);
    });
  }

  /** Next queued frame (only while no onMessage handler is set). */
  next(timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const take = () => {
        if (this.queue.length > 0) {
          done();
          resolve(this.queue.shift());
          return true;
        }
        if (this.closeInfo) {
          done();
          reject(new Error(`${this.label}: closed (${JSON.stringify(this.closeInfo)}) while waiting for a frame`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.label}: no frame within ${timeoutMs} ms`));
      }, timeoutMs);
      const handler = () => take();
      const done = () => {
        clearTimeout(timer);
        this.handlers.delete(handler);
      };
      if (!take()) this.handlers.add(handler);
    });
  }

  send(msg) {
    this.ws.send(JSON.stringify(msg));
  }

  async close() {
    if (this.closeInfo) return;
    const closed = new Promise((resolve) => this.ws.once('close', resolve));
    this.ws.close(1000);
    const timer = setTimeout(() => this.ws.terminate(), 2000);
    await closed;
    clearTimeout(timer);
  }
}

/**
 * Joins `${baseUrl}/rooms/${room}?peer=${peer}` (and `&token=` when given)
 * and returns the client with `.welcome`.
 */
export async function joinRoom(baseUrl, room, peer, { token, ...opts } = {}) {
  const query = `peer=${encodeURIComponent(peer)}${token ? `&token=${encodeURIComponent(token)}` : ''}`;
  const c = new SignalingClient(`${baseUrl}/rooms/${encodeURIComponent(room)}?${query}`, {
    label: `${peer}@${room}`,
    ...opts,
  });
  await c.opened;
  const welcome = await c.next();
  if (welcome.type !== 'welcome') throw new Error(`${peer}: expected welcome first, got ${JSON.stringify(welcome)}`);
  c.welcome = welcome;
  return c;
}

export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/**
 * One side of the pair: a PeerConnection fed by a signaling client. The
 * joiner (B) creates the data channel and so makes the offer; A answers.
 */
export class DcPeer {
  constructor(name, signaling, remoteId, rtcConfig) {
    this.name = name;
    this.signaling = signaling;
    this.remoteId = remoteId;
    this.everOpen = false;
    this.localCandidates = [];
    this.remoteCandidates = [];
    this.states = [];
    this.gathering = deferred();
    this.failed = deferred();
    this.channelOpen = deferred();
    this.received = deferred();
    this.pc = new nodeDataChannel.PeerConnection(name, rtcConfig);
    this.pc.onLocalDescription((sdp, type) => {
      signaling.send({ type: type.toLowerCase(), id: remoteId, description: sdp });
    });
    this.pc.onLocalCandidate((candidate, mid) => {
      this.localCandidates.push(candidate);
      signaling.send({ type: 'candidate', id: remoteId, candidate, mid });
    });
    this.pc.onGatheringStateChange((state) => {
      if (state === 'complete') this.gathering.resolve(this.localCandidates.slice());
    });
    this.pc.onStateChange((state) => {
      this.states.push(state);
      if (state === 'failed') this.failed.resolve(state);
    });
    this.pc.onDataChannel((dc) => this.attach(dc));
    signaling.onMessage = (msg) => this.onSignal(msg);
    for (const msg of signaling.queue.splice(0)) this.onSignal(msg);
  }

  attach(dc) {
    this.dc = dc;
    const opened = () => {
      this.everOpen = true;
      this.channelOpen.resolve();
    };
    dc.onOpen(opened);
    if (dc.isOpen()) opened();
    dc.onMessage((msg) => this.received.resolve(typeof msg === 'string' ? msg : Buffer.from(msg).toString('utf8')));
  }

  onSignal(msg) {
    try {
      if (this.onOtherSignal) this.onOtherSignal(msg);
      if (msg.id !== this.remoteId) return; // peer-joined/left of others etc.
      if (msg.type === 'offer' || msg.type === 'answer') {
        this.pc.setRemoteDescription(msg.description, msg.type);
        this.haveRemote = true;
        // Candidates that came before the description (libdatachannel has no
        // ICE transport to give them to until then).
        for (const c of (this.pendingCandidates ?? []).splice(0)) this.pc.addRemoteCandidate(c.candidate, c.mid);
      } else if (msg.type === 'candidate') {
        if (msg.candidate) {
          this.remoteCandidates.push(msg.candidate);
          const c = { candidate: msg.candidate, mid: msg.mid ?? '0' };
          if (this.haveRemote) this.pc.addRemoteCandidate(c.candidate, c.mid);
          else (this.pendingCandidates ??= []).push(c);
        }
      }
    } catch (err) {
      this.failed.resolve(`signaling error: ${err.message}`);
    }
  }

  describe() {
    let pair = null;
    try {
      pair = this.pc.getSelectedCandidatePair();
    } catch {
      // closed
    }
    return {
      name: this.name,
      states: this.states,
      channelOpened: this.everOpen === true,
      local: this.localCandidates,
      remote: this.remoteCandidates,
      selected: pair,
    };
  }

  close() {
    try {
      this.dc?.close();
    } catch {
      // already closed
    }
    try {
      this.pc.close();
    } catch {
      // already closed
    }
  }
}

export function raceDeadline(promise, deadline, what, diag) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: not done by the deadline; ${JSON.stringify(diag())}`)),
      Math.max(1, deadline - Date.now()),
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Connects A and B through the signaling server at `baseUrl` (ws:// or
 * wss://) in `room`, opens a data channel B -> A and exchanges one message
 * each way. Resolves with what happened; rejects by `timeoutMs` (or as soon
 * as a peer connection fails) with the candidates and states in the message.
 *
 * @param {object} o
 * @param {string} o.baseUrl
 * @param {string} o.room
 * @param {'all'|'relay'} [o.iceTransportPolicy]
 * @param {string} [o.bindAddress]
 * @param {number} [o.timeoutMs]
 * @param {boolean} [o.expectFailure] stop once both peers finished gathering
 *   (or one failed) and report instead of waiting for the channel
 * @param {object} [o.wsOptions] options for the signaling WebSockets (e.g. {ca})
 * @param {(peer:string)=>string|undefined} [o.tokenFor] join token per peer
 * @param {boolean} [o.stripTurn] ignore TURN entries of the welcomes
 */
export async function dataChannelPair({
  baseUrl,
  room,
  iceTransportPolicy = 'all',
  bindAddress,
  timeoutMs = 15000,
  expectFailure = false,
  wsOptions = {},
  tokenFor = () => undefined,
  stripTurn = false,
}) {
  const deadline = Date.now() + timeoutMs;
  const a = await joinRoom(baseUrl, room, 'A', { wsOptions, token: tokenFor('A') });
  const b = await joinRoom(baseUrl, room, 'B', { wsOptions, token: tokenFor('B') });
  const joined = await a.next(Math.max(1, deadline - Date.now()));
  if (joined.type !== 'peer-joined' || joined.id !== 'B') {
    throw new Error(`A: expected peer-joined B, got ${JSON.stringify(joined)}`);
  }
  const usable = (servers) =>
    stripTurn ? (servers ?? []).filter((s) => ![].concat(s.urls).some((u) => /^turns?:/i.test(u))) : servers;
  const config = (welcome) => ({
    iceServers: toRtcIceServers(usable(welcome.iceServers)),
    iceTransportPolicy,
    ...(bindAddress ? { bindAddress } : {}),
  });
  const peerA = new DcPeer('A', a, 'B', config(a.welcome));
  const peerB = new DcPeer('B', b, 'A', config(b.welcome));
  const diag = () => ({ A: peerA.describe(), B: peerB.describe() });
  const result = { welcomeA: a.welcome, welcomeB: b.welcome };
  try {
    peerB.attach(peerB.pc.createDataChannel('rendezvous-test'));
    if (expectFailure) {
      // Both gatherings complete (the TURN allocation answered, for good or
      // bad) or a connection failed: either way the outcome is known.
      const outcome = Promise.race([
        Promise.all([peerA.gathering.promise, peerB.gathering.promise]).then(() => 'gathered'),
        peerA.failed.promise.then((s) => `A ${s}`),
        peerB.failed.promise.then((s) => `B ${s}`),
        peerB.channelOpen.promise.then(() => 'open'),
      ]);
      result.outcome = await raceDeadline(outcome, deadline, 'gathering', diag);
      result.open = { A: peerA.dc?.isOpen() ?? false, B: peerB.dc?.isOpen() ?? false };
      Object.assign(result, diag());
      return result;
    }
    const failure = Promise.race([peerA.failed.promise, peerB.failed.promise]).then((s) => {
      throw new Error(`peer connection ${s}; ${JSON.stringify(diag())}`);
    });
    const work = (async () => {
      await peerB.channelOpen.promise;
      peerB.dc.sendMessage('hello from B');
      result.receivedByA = await peerA.received.promise;
      await peerA.channelOpen.promise;
      peerA.dc.sendMessage('hello from A');
      result.receivedByB = await peerB.received.promise;
    })();
    await raceDeadline(Promise.race([work, failure]), deadline, 'data channel B <-> A', diag);
    Object.assign(result, diag());
    return result;
  } finally {
    peerA.close();
    peerB.close();
    await Promise.all([a.close(), b.close()]);
  }
}

export function cleanup() {
  nodeDataChannel.cleanup();
}

export function initLogger(level, cb) {
  nodeDataChannel.initLogger(level, cb);
}
