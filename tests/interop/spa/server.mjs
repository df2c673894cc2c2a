// A tiny server for the SPA on a loopback port: public/, the two ES modules it imports from
// node_modules, /config.js with the issuer and client id, and the app's backend stub
// (backend.mjs: its session, and the back-channel logout endpoint Latchkey posts to).
//   node server.mjs   (with INTEROP_ISSUER, INTEROP_SPA_CLIENT_ID, INTEROP_SPA_PORT set)
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Backend } from './backend.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json' };
// What may be served from node_modules: the browser ES modules of oidc-client-ts and jwt-decode.
const MODULE_DIRS = ['/node_modules/oidc-client-ts/dist/esm/', '/node_modules/jwt-decode/build/esm/'];

export function startSpaServer({ port, issuer, clientId }) {
  const backend = new Backend({ issuer, clientId });
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    if (backend.handles(req.method, path)) return backend.handle(req, res, path);
    if (req.method === 'POST' && path === '/form_post_callback') {
      // The response_mode=form_post redirect target: echoes what the browser posted.
      let body = '';
      for await (const chunk of req) body += chunk;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      return res.end(JSON.stringify(Object.fromEntries(new URLSearchParams(body))));
    }
    let file;
    if (path === '/config.js') {
      res.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'no-store' });
      return res.end(`export default ${JSON.stringify({ issuer, clientId })};\n`);
    } else if (path === '/' ) {
      res.writeHead(302, { location: '/index.html' });
      return res.end();
    } else if (MODULE_DIRS.some((d) => path.startsWith(d))) {
      file = join(here, path);
    } else if (!path.includes('..')) {
      file = join(here, 'public', path);
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  });
  server.backend = backend;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { INTEROP_ISSUER: issuer, INTEROP_SPA_CLIENT_ID: clientId, INTEROP_SPA_PORT: port } = process.env;
  await startSpaServer({ port: Number(port), issuer, clientId });
  console.log(`SPA on http://127.0.0.1:${port}/index.html`);
}
