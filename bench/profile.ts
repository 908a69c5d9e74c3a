// Where the gateway's time goes under load: the gateway runs in its own process with
// `node --cpu-prof`, gets the bench's load (50 connections, signed-in GET of a small JSON path)
// for BENCH_PROFILE_SECONDS (default 5), exits cleanly so the profile is written, and the
// samples taken during the load window are summarized.
//   npx tsx bench/profile.ts [--store=memory|redis]
// The .cpuprofile stays in a temp directory (printed) for Chrome DevTools or speedscope.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startIdp, DEMO_USERS } from '../dev/idp.js'
import { freePort } from '../dev/ports.js'
import { startRedis, type RedisServer } from '../dev/redis-server.js'
import { CLIENT_ID, CLIENT_SECRET, JSON_BODY, LOAD_PATH } from './constants.js'
import { killChildren, planGateway, runLoad, signedInCookie, startBenchUpstream, startGateway, waitForQuiet, fmt, fmtInt } from './lib.js'
import { formatSummary, summarize, type CpuProfile, type Stage } from './cpuprofile-summary.js'

const store = process.argv.includes('--store=redis') ? 'redis' : 'memory'
const seconds = Number(process.env.BENCH_PROFILE_SECONDS ?? 5)
const log = (line = ''): void => { process.stdout.write(line + '\n') }

/** The request's stages, first match wins (see BENCHMARKS.md). */
const STAGES: Stage[] = [
  ['@fastify/session onRequest: unsign, store get + JSON.parse, new Session (re-sign, hash)', ['handleSession']],
  ['@fastify/session onSend: isModified() hashes the session again', ['saveSession']],
  ['proxy request: http-proxy handler, reply-from, undici dispatch (incl. upstreamHeaders)', ['handler']],
  ['gate: authorization decision, identity headers', ['gate', 'sessionHeaders']],
  ['socket writes (writev/write of strings and buffers)', ['writev', 'writeLatin1String', 'writeUtf8String', 'writeBuffer', 'writeGeneric']],
  ['incoming request: HTTP parse, routing, other hooks (cookie parse, child logger)', ['parserOnHeadersComplete', 'parserOnIncoming']],
  ['upstream response headers: reply.send, other onSend hooks', ['onHeaders', 'wrapOnSendEnd', 'onSendHookRunner']],
  ['upstream socket reads and response body (undici readMore, stream pipe)', ['onData', 'onBody', 'onHttpSocketReadable']],
  ['stream events and cleanup (end-of-stream, close, readable events)', ['eos', 'onFinish', 'resOnFinish', 'emitReadable_', 'endReadableNT', 'emitCloseNT', 'resume_']],
  ['(garbage collector)', ['(garbage collector)']],
  ['(program)', ['(program)']]
]

/** Functions whose inclusive time is shown with what runs under them. */
const FOCUS = [
  'handleSession', // @fastify/session onRequest: unsign, store get (JSON.parse), new Session (re-sign, hash)
  'saveSession', // @fastify/session onSend: isModified() hashes the session again
  'gate', // the gateway's decision
  'createChildLogger', // Fastify's per-request child logger (pino, with redact)
  'handler', // @fastify/http-proxy: destination, then reply-from's request
  'upstreamHeaders', // the gateway's upstream headers
  'onHeaders', // undici: the upstream's response arrives
  'writev', // socket writes
  'writeLatin1String', // string → bytes on socket writes
  '(garbage collector)'
]

async function main (): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'entra-gw-profile-'))
  const upstream = await startBenchUpstream()
  let redis: RedisServer | undefined
  if (store === 'redis') redis = await startRedis()
  const port = await freePort()
  const idp = await startIdp({
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`http://127.0.0.1:${port}/oauth/openid/callback`] }],
    users: DEMO_USERS
  })
  const plan = planGateway(`gateway-${store}`, port, idp.issuer, upstream.url, redis !== undefined ? { SESSION_STORE: 'redis', REDIS_URL: redis.url } : { SESSION_STORE: 'memory' })
  const gateway = await startGateway(plan, ['--cpu-prof', `--cpu-prof-dir=${dir}`])
  try {
    const cookie = await signedInCookie(plan)
    const headers = { accept: 'application/json', cookie }
    const check = await fetch(plan.origin + LOAD_PATH, { headers })
    if (check.status !== 200 || await check.text() !== JSON_BODY) throw new Error(`gateway answered ${check.status}`)
    await runLoad(plan.origin + LOAD_PATH, headers, 2) // warm-up, outside the window
    await waitForQuiet(Number(process.env.BENCH_QUIET_WAIT ?? 60))
    const from = Number(process.hrtime.bigint() / 1000n)
    const run = await runLoad(plan.origin + LOAD_PATH, headers, seconds, 50, [gateway.pid])
    const to = Number(process.hrtime.bigint() / 1000n)
    log(`${plan.name} under load while profiled: ${fmtInt(run.rps)} req/s, p50 ${fmt(run.histogram.percentile(50))} ms, p99 ${fmt(run.histogram.percentile(99))} ms, ${fmt(run.cpuUsPerRequest, 0)} µs of gateway CPU per request (${run.non2xx} non-2xx; other processes used ${fmt(run.otherCpu)} CPUs meanwhile)`)
    await gateway.stop(15_000)
    // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread (tsx's
    // module loader thread writes one too).
    const file = readdirSync(dir).find(f => /\.\d+\.0\.\d+\.cpuprofile$/.test(f))
    if (file === undefined) throw new Error(`no .cpuprofile written in ${dir}`)
    const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as CpuProfile
    log(`profile: ${path.join(dir, file)}`)
    log()
    log(formatSummary(summarize(profile, { from, to, top: 20, focus: FOCUS, stages: STAGES }), {
      // The interesting inclusive rows are the gateway's and its libraries' functions.
      inclusiveFilter: k => !k.startsWith('(') && !/ node:internal| node:/.test(k),
      inclusiveTop: 40
    }))
  } finally {
    await gateway.stop().catch(() => {})
    await idp.close().catch(() => {})
    await redis?.stop().catch(() => {})
    await upstream.stop().catch(() => {})
  }
}

main().then(
  () => { killChildren(); process.exit(0) },
  (err: unknown) => { killChildren(); console.error('profile failed:', err); process.exit(1) }
)
