// Test certificates made with openssl at test time (no dependencies, so any
// test package can import it by relative path).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A self-signed P-256 certificate, valid one day, by default for 127.0.0.1
 * and localhost. Returns {cert, key, pem}: the two paths, and the
 * certificate text to give a client as its trusted CA.
 */
export function makeSelfSignedCert(dir, name = 'server', { cn = 'localhost', san = 'IP:127.0.0.1,DNS:localhost' } = {}) {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${san}`, '-keyout', key, '-out', cert,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10000 },
  );
  return { cert, key, pem: readFileSync(cert, 'utf8') };
}
