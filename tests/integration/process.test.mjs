// The process itself: log formats (the listening line the harness waits for
// is printed in both).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { useServer } from './lib/harness.mjs';
import { httpGet } from './lib/http.mjs';

describe('--log-format json', () => {
  const ctx = useServer(['--log-format', 'json']);

  it('every log line is one JSON object; the listening line is among them', async () => {
    // a request so that there is more than the start-up lines
    assert.equal((await httpGet(ctx.port, '/healthz')).status, 200);
    const lines = ctx.server.log().split('\n').filter((l) => l.trim() !== '');
    assert.ok(lines.length >= 1);
    let listening = false;
    for (const line of lines) {
      let obj;
      assert.doesNotThrow(() => {
        obj = JSON.parse(line);
      }, `log line is not JSON: ${line}`);
      assert.equal(typeof obj, 'object');
      assert.ok(obj !== null && !Array.isArray(obj), `log line is not an object: ${line}`);
      if (/listening on 127\.0\.0\.1:\d+/.test(line)) listening = true;
    }
    assert.ok(listening, 'no JSON log line says "listening on 127.0.0.1:PORT"');
  });
});
