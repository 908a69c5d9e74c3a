// `docker stop`: SIGTERM to the gateway process while clients are connected. It stops taking
// connections at once (refused; 503 for a request already on its way), closes idle keep-alive
// connections, cuts what is still open at SHUTDOWN_TIMEOUT_SECONDS and exits 0, so Docker never
// needs SIGKILL. The gateway runs as its own process (src/server.ts through tsx), with only the
// environment given here, on a port it picks itself.
import t, { type Test } from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startIdp, DEMO_USERS, type Idp } from '../../dev/idp.js'
import { DEV_CLIENT_ID } from '../../dev/client-id.js'
import { startLibreChat, type LibreChatStandIn } from '../helpers/librechat.js'
import { startProcess, listeningOrigin, type Proc } from '../helpers/process.js'
import { rawConnect, hasWholeResponse } from '../helpers/sockets.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const CLIENT_ID = DEV_CLIENT_ID
const CLIENT_SECRET = 'shutdown-test-secret-value-0123456789'
const SESSION_SECRET = 'shutdown-test-session-secret-0123456789abcdef'
const STREAM = '/api/agents/chat/stream/1'

interface Running { gw: Proc, port: number, origin: string, lc: LibreChatStandIn }

async function startGateway (t: Test, env: Record<string, string>): Promise<Running> {
  const lc = await startLibreChat()
  t.teardown(() => lc.close())
  const idp: Idp = await startIdp({ clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: ['http://127.0.0.1/oauth/openid/callback'] }], users: DEMO_USERS })
  t.teardown(() => idp.close())
  // Its own directory: no .env of a developer's checkout is read.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'entra-gw-shutdown-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // The stream's path is public, so no sign-in is needed and DOMAIN_SERVER is never visited:
  // the gateway can listen on a port it picks (PORT=0) and say which.
  const rules = path.join(dir, 'authz.yaml')
  await writeFile(rules, 'public:\n  - /api/agents/chat/stream/\n')
  const gw = startProcess([process.execPath, '--import', import.meta.resolve('tsx'), path.join(ROOT, 'src/server.ts')], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      OPENID_ISSUER: idp.issuer + '/',
      OPENID_CLIENT_ID: CLIENT_ID,
      OPENID_CLIENT_SECRET: CLIENT_SECRET,
      OPENID_SESSION_SECRET: SESSION_SECRET,
      DOMAIN_SERVER: 'http://127.0.0.1:3080',
      UPSTREAM_URL: lc.url,
      HOST: '127.0.0.1',
      PORT: '0',
      AUTHZ_RULES_FILE: rules,
      LOG_LEVEL: 'info',
      ...env
    }
  })
  t.teardown(() => gw.kill())
  const origin = await listeningOrigin(gw)
  return { gw, port: Number(new URL(origin).port), origin, lc }
}

const get = (p: string, extra = ''): string => `GET ${p} HTTP/1.1\r\nHost: gateway\r\n${extra}`

t.test('SIGTERM with a stream open: new requests refused, idle connections closed, the stream cut at the deadline, exit 0', async t => {
  const { gw, port, origin } = await startGateway(t, { SHUTDOWN_TIMEOUT_SECONDS: '1' })

  // A kept-alive connection, idle after one answered request.
  const idle = await rawConnect(port)
  idle.socket.write(get('/healthz') + '\r\n')
  await idle.until(hasWholeResponse)
  // A request on its way: its headers are not finished yet.
  const pending = await rawConnect(port)
  pending.socket.write(get('/healthz'))
  // A chat stream, its first event received; the upstream holds the rest back.
  const stream = await rawConnect(port)
  stream.socket.write(get(STREAM, 'Accept: text/event-stream\r\n') + '\r\n')
  await stream.until(/data: \{"n":0\}/)

  gw.child.kill('SIGTERM')
  await idle.closed
  t.pass('the idle keep-alive connection is closed')
  // Node closes idle connections and the listener in one step: nothing listens any more.
  const fresh = await fetch(`${origin}/healthz`).then(r => r.status, (err: Error & { cause?: { code?: string } }) => err.cause?.code)
  t.ok(fresh === 503 || fresh === 'ECONNREFUSED', `a new connection is refused or answered 503 (got ${String(fresh)})`)
  pending.socket.write('\r\n')
  const answer = await pending.until(hasWholeResponse)
  t.match(answer, /^HTTP\/1\.1 503 /, 'the request that was on its way is answered 503')

  const cut = await stream.closed
  t.notMatch(cut, /0\r\n\r\n$/, 'the stream did not end by itself: it was cut')
  const exit = await gw.exited
  t.same(exit, { code: 0, signal: null }, 'exit code 0, not killed', { output: gw.output() })
  const forced = gw.logs().find(l => l.event === 'shutdown_forced')
  t.ok(forced, 'the log says the open connections were closed by force', { output: gw.output() })
  t.equal(forced?.afterMs, 1000, 'at SHUTDOWN_TIMEOUT_SECONDS')
})

t.test('a stream that ends during the drain: the gateway exits then, without waiting for the deadline or the keep-alive timeout', async t => {
  // Both far beyond the test's own timeout: only an exit that waits for neither can pass.
  const { gw, port, lc } = await startGateway(t, { SHUTDOWN_TIMEOUT_SECONDS: '3600', KEEP_ALIVE_TIMEOUT_SECONDS: '3600' })
  const stream = await rawConnect(port)
  stream.socket.write(get(STREAM, 'Accept: text/event-stream\r\n') + '\r\n')
  await stream.until(/data: \{"n":0\}/)

  gw.child.kill('SIGTERM')
  await gw.waitForLog('"shutdown"', l => l.event === 'shutdown')
  // The upstream sends the remaining events; the response ends and the connection, kept alive
  // by the client, would idle.
  for (let n = 1; n < 5; n++) {
    lc.nextEvent()
    await stream.until(new RegExp(`data: \\{"n":${n}\\}`))
  }
  await stream.until(/0\r\n\r\n$/)
  t.pass('the stream ended normally during the drain')
  const exit = await gw.exited
  t.same(exit, { code: 0, signal: null }, 'exit code 0', { output: gw.output() })
  t.notOk(gw.logs().some(l => l.event === 'shutdown_forced'), 'nothing had to be cut', { output: gw.output() })
})
