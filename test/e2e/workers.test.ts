// WORKERS=2: the real entry point (src/server.ts through tsx) as a node:cluster primary with two
// worker processes on one real Redis (over TLS, as an ACL user named in a rediss:// URL, its CA
// given the way an operator would: NODE_EXTRA_CA_CERTS). Which worker a connection lands on is the kernel's and the
// primary's choice, so every check either holds whichever worker answers or names the worker
// by the pid in its log line (pino writes it on every line) and kills it: the session signed in
// through one worker is then served by another, a sign-out made on one is refused by the other,
// the killed worker is replaced while the other serves, metrics are the workers' sum on the one
// METRICS_PORT, and SIGTERM ends every process.
import t, { type Test } from 'tap'
import { request as httpRequest } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { once } from 'node:events'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startIdp, DEMO_USERS, type Idp } from '../../dev/idp.js'
import { DEV_CLIENT_ID } from '../../dev/client-id.js'
import { startUpstream } from '../../dev/upstream.js'
import { Browser, signIn } from '../helpers/browser.js'
import { startProcess, type Proc } from '../helpers/process.js'
import { freePort, startRedis, withFreePort } from '../helpers/redis.js'
import { startTlsRedis } from '../../dev/redis-topologies.js'
import { restartDelayMs } from '../../src/supervisor.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const CLIENT_SECRET = 'workers-test-secret-value-0123456789'
const SESSION_SECRET = 'workers-test-session-secret-0123456789abcdef'

/** One request on a connection of its own (no keep-alive), so the primary hands each to a worker anew. */
async function fresh (url: string, init: { method?: string, headers?: Record<string, string> } = {}): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: init.method ?? 'GET', headers: init.headers, agent: false, timeout: 10_000 }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')))
    req.on('error', reject)
    req.end()
  })
}

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true } catch { return false } }

interface Gateway { proc: Proc, origin: string, metrics: string }

async function startGateway (t: Test, redis: { url: string }, idp: Idp | undefined, upstreamUrl: string, port: number, extra: Record<string, string> = {}): Promise<Gateway> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'entra-gw-workers-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const metricsPort = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const proc = startProcess([process.execPath, '--import', import.meta.resolve('tsx'), path.join(ROOT, 'src/server.ts')], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      OPENID_ISSUER: (idp?.issuer ?? 'http://127.0.0.1:9') + '/',
      OPENID_CLIENT_ID: DEV_CLIENT_ID,
      OPENID_CLIENT_SECRET: CLIENT_SECRET,
      OPENID_SESSION_SECRET: SESSION_SECRET,
      DOMAIN_SERVER: origin,
      UPSTREAM_URL: upstreamUrl,
      HOST: '127.0.0.1',
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      SESSION_STORE: 'redis',
      REDIS_URL: redis.url,
      WORKERS: '2',
      SHUTDOWN_TIMEOUT_SECONDS: '2',
      LOG_LEVEL: 'info',
      ...extra
    }
  })
  t.teardown(() => proc.kill())
  return { proc, origin, metrics: `http://127.0.0.1:${metricsPort}/metrics` }
}

t.test('restart back-off: doubles with each early death, capped', async t => {
  t.same([1, 2, 3, 4].map(restartDelayMs), [250, 500, 1000, 2000])
  t.equal(restartDelayMs(30), 16_000)
})

t.test('two workers on one Redis: sessions and sign-out shared, a killed worker replaced while the other serves, metrics summed, SIGTERM ends all', async t => {
  const redis = await startTlsRedis()
  t.teardown(() => redis.stop())
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  let idp: Idp | undefined
  const gw = await withFreePort(async port => {
    idp = await startIdp({ clients: [{ client_id: DEV_CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`http://127.0.0.1:${port}/oauth/openid/callback`] }], users: DEMO_USERS })
    const started = await startGateway(t, redis, idp, upstream.url, port, { NODE_EXTRA_CA_CERTS: redis.caFile })
    try {
      await started.proc.waitForLog('"workers_listening"', l => l.event === 'workers_listening')
      return started
    } catch (err) {
      await started.proc.kill()
      await idp.close()
      throw err
    }
  })
  t.teardown(() => idp?.close())
  const { proc } = gw
  const up = proc.logs().find(l => l.event === 'workers_listening')
  const pids = up?.pids as number[]
  t.equal(new Set(pids).size, 2, 'two worker processes', { output: proc.output() })
  t.notOk(pids.includes(proc.child.pid ?? -1), 'the primary is not one of them')

  // Metrics: 20 health checks on fresh connections, counted by whichever worker answered, summed.
  for (let i = 0; i < 20; i++) t.equal((await fresh(`${gw.origin}/healthz`)).status, 200)
  const text = (await fresh(gw.metrics)).body
  const health = [...text.matchAll(/^entra_gateway_requests_total\{[^}]*route_class="health"[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0)
  t.equal(health, 20, 'the one metrics port reports both workers\' requests, summed')
  t.notMatch((await fresh(`${gw.origin}/metrics`)).body, /entra_gateway_requests_total/, 'metrics are not on the public port')
  t.equal(proc.logs().filter(l => l.event === 'metrics_listening').length, 1, 'one metrics listener: the primary\'s')
  t.equal((await fresh(`${gw.origin}/readyz`)).status, 200, 'ready: the workers reach Redis over TLS as the ACL user')

  // Sign in (whichever worker), then kill the worker that completed it.
  const browser = new Browser()
  const { response } = await signIn(browser, `${gw.origin}/hello`, 'alice', 'alice')
  t.equal(response.status, 200, 'signed in')
  const cookie = `entra-gw=${browser.cookie(gw.origin, 'entra-gw') ?? ''}`
  // The answer can arrive before the worker's log line is read from its pipe: waited for.
  const signer = (await proc.waitForLog('"sign_in"', l => l.event === 'sign_in')).pid as number
  t.ok(pids.includes(signer), 'a worker signed alice in')
  process.kill(signer, 'SIGKILL')
  await proc.waitForLog('"worker_exit"', l => l.event === 'worker_exit' && l.pid === signer)
  // Until its replacement listens, only the other worker is there to answer.
  const during = await Promise.all(Array.from({ length: 10 }, async () => await fresh(`${gw.origin}/headers`, { headers: { cookie, accept: 'application/json' } })))
  t.same(during.map(r => r.status), Array(10).fill(200), 'the other worker serves alice\'s session meanwhile')
  const listens = (): number[] => proc.logs().filter(l => typeof l.msg === 'string' && l.msg.startsWith('Server listening at')).map(l => l.pid as number)
  await proc.waitForLog('a replacement worker listening', l => typeof l.msg === 'string' && l.msg.startsWith('Server listening at') && !pids.includes(l.pid as number))
  const replacement = listens().find(p => !pids.includes(p)) as number
  t.ok(alive(replacement), 'a new worker replaced the killed one')
  const after = await Promise.all(Array.from({ length: 10 }, async () => await fresh(`${gw.origin}/headers`, { headers: { cookie, accept: 'application/json' } })))
  t.same(after.map(r => r.status), Array(10).fill(200), 'alice is served by either worker')

  // Sign out on one worker; kill it; the other refuses the cookie.
  const out = await fresh(`${gw.origin}/oauth2/sign_out`, { method: 'POST', headers: { cookie, origin: gw.origin } })
  t.equal(out.status, 303, 'signed out (sent on to the signed-out page)')
  const outPid = (await proc.waitForLog('"sign_out"', l => l.event === 'sign_out')).pid as number
  process.kill(outPid, 'SIGKILL')
  await proc.waitForLog('"worker_exit" of the worker that signed out', l => l.event === 'worker_exit' && l.pid === outPid)
  const refused = await Promise.all(Array.from({ length: 10 }, async () => await fresh(`${gw.origin}/headers`, { headers: { cookie, accept: 'application/json' } })))
  t.same(refused.map(r => r.status), Array(10).fill(401), 'the sign-out holds on the other worker')

  // SIGTERM to the primary: every worker drains and exits, then the primary, with 0.
  await proc.waitForLog('both workers listening again', () => new Set(listens().filter(alive)).size >= 2)
  const workers = listens().filter(alive)
  proc.child.kill('SIGTERM')
  const exit = await proc.exited
  t.same(exit, { code: 0, signal: null }, 'the primary exits 0', { output: proc.output() })
  t.same(workers.filter(alive), [], 'no worker is left running')
  t.ok(proc.logs().some(l => l.event === 'primary_exit' && l.code === 0))
})

t.test('workers that cannot start: the primary stops and exits non-zero', async t => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  // The port is taken: every worker's listen fails.
  const holder = createServer()
  holder.listen(0, '127.0.0.1')
  await once(holder, 'listening')
  t.teardown(() => holder.close())
  const port = (holder.address() as { port: number }).port
  const gw = await startGateway(t, redis, undefined, 'http://127.0.0.1:9', port)
  const exit = await gw.proc.exited
  t.equal(exit.code, 1, 'exit code 1', { output: gw.proc.output() })
  t.ok(gw.proc.logs().some(l => l.event === 'worker_start_failed'), 'the log says a worker could not start')
  t.match(gw.proc.output(), /EADDRINUSE|address already in use/i, 'and the worker says why')
})

t.test('WORKERS=2 with the memory store: one line naming WORKERS and SESSION_STORE, exit 2', async t => {
  const proc = startProcess([process.execPath, '--import', import.meta.resolve('tsx'), path.join(ROOT, 'src/server.ts')], {
    cwd: os.tmpdir(),
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      OPENID_ISSUER: 'http://127.0.0.1:9/',
      OPENID_CLIENT_ID: DEV_CLIENT_ID,
      OPENID_CLIENT_SECRET: CLIENT_SECRET,
      OPENID_SESSION_SECRET: SESSION_SECRET,
      DOMAIN_SERVER: 'http://127.0.0.1:3080',
      UPSTREAM_URL: 'http://127.0.0.1:9',
      WORKERS: '2'
    }
  })
  const exit = await proc.exited
  t.equal(exit.code, 2)
  const lines = proc.output().trim().split('\n')
  t.equal(lines.length, 1, 'one line', { output: proc.output() })
  t.match(lines[0], /^entra-gateway: configuration error: WORKERS=2 needs SESSION_STORE=redis/)
})
