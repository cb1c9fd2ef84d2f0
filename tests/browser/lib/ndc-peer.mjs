// A libdatachannel peer (node-datachannel@0.33.4) in a room, written the way
// a libdatachannel application would be: libdatachannel's own WebSocket
// client, rtc::PeerConnection callbacks wired straight to the canonical
// signaling payloads (offer/answer `description`, candidate `candidate` +
// `mid`), role assignment by `seed` (lower = polite = creates the channel and
// offers), one connection per other peer (a mesh). It sends no `session`,
// `seed` tag or `iceRestart` (a plain libdatachannel app would not), and it
// cannot ICE-restart: the browser module must renegotiate with it instead.
//
// Every event goes to `events`; waitFor() finds the first past or future one
// matching a predicate, with a deadline.

export async function loadNdc() {
  try {
    return (await import('node-datachannel')).default;
  } catch {
    return null;
  }
}

export function startNdcPeer(ndc, wsUrl, room, id, { seed, bindAddress, log = () => {} } = {}) {
  const events = [];
  const waiters = [];
  const emit = (ev) => {
    ev.at = Date.now();
    events.push(ev);
    log(`[ndc ${id}] ${JSON.stringify(ev).slice(0, 300)}`);
    for (const w of [...waiters]) if (w.match(ev)) w.done(ev);
  };
  const ws = new ndc.WebSocket();
  const partners = new Map();  // id -> { mySeed, theirSeed, pc, dc, open, incoming }
  const sendSignal = (msg) => ws.sendMessage(JSON.stringify(msg));
  const draw = () => seed ?? Math.random();

  const partner = (peer) => {
    let p = partners.get(peer);
    if (!p) {
      p = { mySeed: draw(), theirSeed: null, pc: null, dc: null, open: false, incoming: null };
      partners.set(peer, p);
    }
    return p;
  };
  const sendRole = (peer, p) => {
    const m = { id: peer, type: 'role', seed: p.mySeed };
    if (p.theirSeed !== null) m.peerSeed = p.theirSeed;
    sendSignal(m);
  };
  const closePc = (p) => {
    try { p.dc?.close(); } catch { /* closed */ }
    try { p.pc?.close(); } catch { /* closed */ }
    p.pc = p.dc = null;
    p.open = false;
  };

  const wireChannel = (peer, p, dc) => {
    dc.onOpen(() => {
      if (p.open) return;
      p.dc = dc;
      p.open = true;
      emit({ event: 'open', peer });
    });
    dc.onMessage((msg) => {
      if (typeof msg === 'string') {
        if (msg.startsWith('{"demo":"file"')) {
          const m = JSON.parse(msg);
          p.incoming = { name: m.name, size: m.size, chunks: [] };
          return;
        }
        if (msg.startsWith('{"demo":"file-end"') && p.incoming) {
          const f = p.incoming;
          p.incoming = null;
          emit({ event: 'file', peer, name: f.name, size: f.size, data: Buffer.concat(f.chunks) });
          return;
        }
        emit({ event: 'message', peer, text: msg });
      } else if (p.incoming) {
        p.incoming.chunks.push(Buffer.from(msg));
      } else {
        emit({ event: 'binary', peer, bytes: msg.length });
      }
    });
    dc.onClosed(() => {
      if (p.dc === dc && p.open) {
        p.open = false;
        emit({ event: 'closed', peer });
      }
    });
  };

  const decide = (peer, p) => {
    if (p.pc || p.theirSeed === null || p.theirSeed === p.mySeed) return;
    const polite = p.mySeed < p.theirSeed;
    emit({ event: 'role', peer, role: polite ? 'polite' : 'impolite' });
    const config = { iceServers: [] };
    if (bindAddress) config.bindAddress = bindAddress;
    const pc = new ndc.PeerConnection(`${id}-${peer}`, config);
    p.pc = pc;
    pc.onLocalDescription((sdp, type) => sendSignal({ id: peer, type, description: sdp }));
    pc.onLocalCandidate((candidate, mid) => sendSignal({ id: peer, type: 'candidate', candidate, mid }));
    pc.onStateChange((s) => {
      if (p.pc !== pc) return;
      emit({ event: 'state', peer, state: s });
    });
    pc.onDataChannel((dc) => wireChannel(peer, p, dc));
    if (polite) wireChannel(peer, p, pc.createDataChannel('rendezvous'));
  };

  ws.onOpen(() => emit({ event: 'ws-open' }));
  ws.onError((e) => emit({ event: 'ws-error', error: String(e) }));
  ws.onClosed(() => emit({ event: 'ws-closed' }));
  ws.onMessage((raw) => {
    const m = JSON.parse(raw.toString());
    const peer = m.id;
    switch (m.type) {
      case 'welcome':
        emit({ event: 'joined', id: m.id, peers: m.peers });
        for (const other of m.peers) sendRole(other, partner(other));
        break;
      case 'peer-joined': {
        emit({ event: 'peer-joined', peer });
        const p = partner(peer);
        closePc(p);
        p.theirSeed = null;
        p.mySeed = draw();
        sendRole(peer, p);
        break;
      }
      case 'peer-left':
        emit({ event: 'peer-left', peer });
        if (partners.has(peer)) { closePc(partners.get(peer)); partners.delete(peer); }
        break;
      case 'role': {
        const p = partner(peer);
        if (p.theirSeed !== null && p.theirSeed !== m.seed) {
          closePc(p);  // a new pairing (the other side recovers by renegotiating)
        }
        p.theirSeed = m.seed;
        if (m.seed === p.mySeed) { p.mySeed = Math.random(); sendRole(peer, p); break; }
        if (m.peerSeed !== p.mySeed) sendRole(peer, p);
        decide(peer, p);
        break;
      }
      case 'bye':
        if (partners.has(peer)) { closePc(partners.get(peer)); partners.delete(peer); }
        break;
      case 'offer':
      case 'answer': {
        const p = partners.get(peer);
        if (p?.pc) {
          try { p.pc.setRemoteDescription(m.description, m.type); } catch (e) { emit({ event: 'error', peer, message: String(e) }); }
        }
        break;
      }
      case 'candidate': {
        const p = partners.get(peer);
        if (p?.pc && m.candidate) {
          try { p.pc.addRemoteCandidate(m.candidate, m.mid ?? '0'); } catch (e) { emit({ event: 'error', peer, message: String(e) }); }
        }
        break;
      }
      case 'error':
        emit({ event: 'server-error', code: m.code, message: m.message });
        break;
      default:
        break;
    }
  });
  ws.open(`${wsUrl}/rooms/${room}?peer=${id}`);

  return {
    id,
    events,
    partners,
    send(peer, text) {
      const p = partners.get(peer);
      if (!p?.open) throw new Error(`libdatachannel peer ${id}: no open channel to ${peer}`);
      p.dc.sendMessage(text);
    },
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
          reject(new Error(`libdatachannel peer ${id}: timed out after ${ms} ms waiting for ${what}; events: ${events.map((e) => JSON.stringify({ ...e, data: undefined })).join(' ').slice(-2000)}`));
        }, ms);
        waiters.push(w);
      });
    },
    close() {
      for (const p of partners.values()) closePc(p);
      partners.clear();
      try { ws.close(); } catch { /* closed */ }
    },
  };
}
