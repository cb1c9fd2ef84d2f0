// A libdatachannel peer (node-datachannel@0.33.4) speaking the room protocol
// the way a libdatachannel application would: libdatachannel's own WebSocket
// client, rtc::PeerConnection callbacks wired straight to the signaling
// messages (offer/answer `description`, candidate `candidate` + `mid`), role
// assignment by `seed`, the polite side creating the data channel.
//
// `seed` lets a test choose the role: 1e-9 makes this peer (almost surely)
// polite, 0.999999999 impolite.
export async function loadNdc() {
  try {
    return (await import('node-datachannel')).default;
  } catch {
    return null;  // not installed: the tests that need it skip themselves
  }
}

export function startNdcPeer(ndc, url, room, id, { seed, send, log = () => {} } = {}) {
  const events = [];
  const waiters = [];
  const emit = (ev) => {
    events.push(ev);
    log(JSON.stringify(ev));
    for (const w of [...waiters]) if (w.match(ev)) w.done(ev);
  };
  const ws = new ndc.WebSocket();
  const state = { mySeed: seed ?? Math.random(), theirSeed: null, other: null, pc: null, dc: null };
  const sendSignal = (msg) => ws.sendMessage(JSON.stringify(msg));
  const sendRole = () => {
    const m = { id: state.other, type: 'role', seed: state.mySeed };
    if (state.theirSeed !== null) m.peerSeed = state.theirSeed;
    sendSignal(m);
  };

  const wireChannel = (dc) => {
    dc.onOpen(() => {
      if (state.dc) return;
      state.dc = dc;
      emit({ event: 'connected' });
      if (send) dc.sendMessage(send);
    });
    dc.onMessage((msg) => emit({ event: 'message', text: msg.toString() }));
    dc.onClosed(() => emit({ event: 'channel-closed' }));
  };

  const decide = () => {
    if (state.pc || state.theirSeed === null || state.theirSeed === state.mySeed) return;
    const polite = state.mySeed < state.theirSeed;
    emit({ event: 'role', role: polite ? 'polite' : 'impolite' });
    const pc = new ndc.PeerConnection(id, { iceServers: [] });
    state.pc = pc;
    // rtc::PeerConnection callbacks, wired straight to the signaling client.
    pc.onLocalDescription((sdp, type) => sendSignal({ id: state.other, type, description: sdp }));
    pc.onLocalCandidate((candidate, mid) => sendSignal({ id: state.other, type: 'candidate', candidate, mid }));
    pc.onStateChange((s) => emit({ event: 'state', state: s }));
    pc.onDataChannel((dc) => wireChannel(dc));
    if (polite) wireChannel(pc.createDataChannel('rendezvous'));  // creating it makes the offer
  };

  ws.onOpen(() => emit({ event: 'ws-open' }));
  ws.onError((e) => emit({ event: 'ws-error', error: e }));
  ws.onMessage((raw) => {
    const m = JSON.parse(raw.toString());
    switch (m.type) {
      case 'welcome':
        emit({ event: 'joined', peers: m.peers });
        if (m.peers.length) { state.other = m.peers[0]; sendRole(); }
        break;
      case 'peer-joined':
        if (!state.other) { state.other = m.id; sendRole(); }
        break;
      case 'role':
        state.other = m.id;
        state.theirSeed = m.seed;
        if (m.seed === state.mySeed) { state.mySeed = Math.random(); sendRole(); break; }
        if (m.peerSeed !== state.mySeed) sendRole();
        decide();
        break;
      case 'offer':
      case 'answer':
        if (state.pc) state.pc.setRemoteDescription(m.description, m.type);
        break;
      case 'candidate':
        if (state.pc && m.candidate) state.pc.addRemoteCandidate(m.candidate, m.mid);
        break;
      case 'error':
        emit({ event: 'error', code: m.code, message: m.message });
        break;
      default:
        break;
    }
  });
  ws.open(`${url}/rooms/${room}?peer=${id}`);

  return {
    events,
    waitFor(match, ms, what) {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = {
          match,
          done: (ev) => { clearTimeout(w.timer); waiters.splice(waiters.indexOf(w), 1); resolve(ev); },
        };
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`libdatachannel peer: timed out after ${ms} ms waiting for ${what}; ${JSON.stringify(events)}`));
        }, ms);
        waiters.push(w);
      });
    },
    close() {
      try { state.dc?.close(); } catch { /* closed */ }
      try { state.pc?.close(); } catch { /* closed */ }
      try { ws.close(); } catch { /* closed */ }
    },
  };
}
