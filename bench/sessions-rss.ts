// Memory per stored session, in a process of its own: a gateway (buildApp, not listening) whose
// memory store is filled with realistic signed-in sessions, measured after a full GC at each
// count; then a churn phase at constant count (sessions replaced as fast as the loop allows)
// to see whether RSS stays flat. Run with --expose-gc:
//   node --expose-gc --import tsx bench/sessions-rss.ts [--counts=0,10000,100000] [--churn-seconds=20] [--names=latin1|non-latin1]
// Results go to the parent over IPC (`{ type: 'result' }`), or to stdout as JSON when run alone.
import { randomBytes, randomUUID } from 'node:crypto'
import { loadConfig } from '../src/config.js'
import { CLIENT_ID } from './constants.js'
import { buildApp } from '../src/app.js'
import { MemoryStore } from '../src/session/memory-store.js'
import { resolvePrincipal } from '../src/principal/principal.js'
import { keepInSession, keepInSideEntry, keptTokens } from '../src/tokens/jar.js'

const args = new Map(process.argv.slice(2).map(a => { const [k = '', v = ''] = a.replace(/^--/, '').split('='); return [k, v] }))
const counts = (args.get('counts') ?? '0,10000,100000').split(',').map(Number)
const churnSeconds = Number(args.get('churn-seconds') ?? 20)
const names = args.get('names') === 'non-latin1' ? 'non-latin1' : 'latin1'

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with node --expose-gc')

const maxCount = Math.max(...counts)
const store = new MemoryStore({ maxSessions: Math.max(100, maxCount + 1), sweepIntervalMs: 3600_000 })
const config = loadConfig({
  // Never contacted in a way that matters here: discovery fails quietly in the background.
  OPENID_ISSUER: 'http://127.0.0.1:9/5f1c2b3a-7d4e-4c8b-9a6f-0e1d2c3b4a59/v2.0',
  OPENID_CLIENT_ID: CLIENT_ID,
  OPENID_CLIENT_SECRET: 'bench-client-secret',
  OPENID_SESSION_SECRET: randomBytes(32).toString('hex'),
  DOMAIN_SERVER: 'http://127.0.0.1:3080',
  UPSTREAM_URL: 'http://127.0.0.1:9',
  LOG_LEVEL: 'silent'
})
const app = await buildApp(config, { store })
await app.ready()

// ---------------------------------------------------------------------------------------------
// Realistic sessions: the shape src/auth/signin.ts stores (cookie; user = identity + role values
// + forward headers; the token set sealed with AES-256-GCM; the access token's expiry)
// ---------------------------------------------------------------------------------------------

const sealer = app.sealer
const sideEntry = keepInSideEntry(config)
const sealedInSession = keepInSession(config)

const LATIN1_NAMES = ['Alice Zoë Ångström', 'Bob Æsir Øvergård', 'Carol Smith', 'Dmitri Ivanov', 'Élodie Durand', 'Frank Müller']
const OTHER_NAMES = ['Łukasz Żółkiewski', 'Dvořák Jiří', '山田 太郎', 'Παπαδόπουλος Νίκος', 'Öztürk Çağrı Şahin', 'Nguyễn Văn An']
const nameList = names === 'latin1' ? LATIN1_NAMES : OTHER_NAMES
const TENANT = '5f1c2b3a-7d4e-4c8b-9a6f-0e1d2c3b4a59'
const GROUPS = Array.from({ length: 10 }, () => randomUUID())
// Entra's sizes: ID token ~1.5 KB, access token ~1.5-2.5 KB (more with many roles/groups),
// refresh token ~1.5 KB (opaque). A JWT's header is the same for every user; the rest is not.
const JWT_HEADER = Buffer.from(JSON.stringify({ typ: 'JWT', alg: 'RS256', kid: 'JDNa_4i4r7FgigL3sHIlI3xV-IU' })).toString('base64url')

// Random text to cut tokens from: fast, and every stored session is its own JSON string anyway
// (the store keeps JSON.stringify's output), so sharing the source costs nothing per session.
const POOL = randomBytes(3 * 1024 * 1024).toString('base64url')
function randomText (length: number): string {
  const at = Math.floor(Math.random() * (POOL.length - length))
  return POOL.slice(at, at + length)
}
function jwtOfLength (length: number): string {
  const signature = randomText(342) // RS256 with a 2048-bit key
  return `${JWT_HEADER}.${randomText(Math.max(16, length - JWT_HEADER.length - signature.length - 2))}.${signature}`
}
function between (min: number, max: number): number { return min + Math.floor(Math.random() * (max - min + 1)) }

let serial = 0
/**
 * One signed-in session as the gateway stores it, made by the gateway's own functions: the
 * principal from Entra-shaped ID token claims (resolvePrincipal, as at sign-in), the session
 * entry as sign-in saves it, and the side entry holding what keptTokens keeps, sealed to bytes.
 */
async function makeSession (id: string): Promise<{ session: Record<string, unknown>, tokens: Buffer }> {
  const n = serial++
  const oid = randomUUID()
  const name = `${nameList[n % nameList.length] ?? 'User'} ${n}`
  const email = `user${n}@contoso.example`
  const now = Date.now()
  const claims = {
    aud: CLIENT_ID,
    iss: config.issuer,
    iat: Math.floor(now / 1000),
    exp: Math.floor(now / 1000) + 3600,
    sub: randomText(43),
    oid,
    tid: TENANT,
    name,
    email,
    preferred_username: email,
    roles: ['ChatUser'],
    groups: GROUPS.slice(0, between(2, 10)),
    login_hint: 'O.' + randomText(180),
    nonce: randomText(43)
  }
  const unused = async (): Promise<never> => { throw new Error('not in the default configuration') }
  // As openid-client hands them over: parsed from the token's JSON, every string its own copy.
  const parsed = JSON.parse(JSON.stringify(claims)) as Record<string, unknown>
  const principal = await resolvePrincipal(parsed, config.requiredRole, { overageGroups: unused, accessTokenClaims: () => ({}), userInfoClaims: unused }, now, app.tokens.pool)
  const maxAge = config.sessionExpirySeconds * 1000
  const accessTokenExpiresAt = Math.floor(now / 1000) + 3600
  const set = {
    idToken: jwtOfLength(between(1500, 1700)),
    accessToken: jwtOfLength(between(1800, 2500)),
    accessTokenExpiresAt,
    refreshToken: '1.AXkA' + randomText(between(1400, 1700)),
    scope: 'openid profile email offline_access',
    loginHint: claims.login_hint
  }
  const session = {
    data: {
      user: principal,
      accessExp: accessTokenExpiresAt,
      ...(sealedInSession ? { sealed: sealer.sealJson({ a: set.accessToken }, `access:${id}`) } : {})
    },
    expiresAt: now + maxAge
  }
  return { session, tokens: sealer.sealBytes(JSON.stringify(keptTokens(set, sideEntry)), `tokens:${id}`) }
}
/** Session ids as the gateway draws them: 24 characters. */
const newId = (): string => randomBytes(18).toString('base64url')

const ids: string[] = []
async function put (id: string): Promise<void> {
  const { session, tokens } = await makeSession(id)
  await store.set(id, session as never)
  await store.setAux(`tokens:${id}`, tokens, config.sessionExpirySeconds * 1000)
}

async function settle (): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 4; i++) {
    gc?.()
    await new Promise(resolve => setImmediate(resolve))
  }
  return process.memoryUsage()
}
const yieldLoop = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

// ---------------------------------------------------------------------------------------------
// Counts
// ---------------------------------------------------------------------------------------------

const levels: Array<{ sessions: number, rss: number, heapUsed: number, external: number }> = []
let sampleJsonBytes = 0
for (const count of [...counts].sort((a, b) => a - b)) {
  while (ids.length < count) {
    const id = newId()
    await put(id)
    ids.push(id)
    if (ids.length % 1000 === 0) await yieldLoop()
  }
  const m = await settle()
  levels.push({ sessions: store.size, rss: m.rss, heapUsed: m.heapUsed, external: m.external })
}
if (ids.length > 0) {
  sampleJsonBytes = Buffer.byteLength(JSON.stringify(await store.get(ids[0] as string)))
}

// ---------------------------------------------------------------------------------------------
// Churn at constant count
// ---------------------------------------------------------------------------------------------

let churn: Record<string, unknown> | undefined
if (churnSeconds > 0 && ids.length > 0) {
  const start = await settle()
  const samples: Array<{ t: number, rss: number }> = []
  const t0 = Date.now()
  let replaced = 0
  let k = 0
  let nextSample = t0
  while (Date.now() - t0 < churnSeconds * 1000) {
    for (let i = 0; i < 500; i++) {
      const old = ids[k] as string
      store.destroy(old).catch(() => {})
      store.deleteAux(`tokens:${old}`).catch(() => {})
      const id = newId()
      await put(id)
      ids[k] = id
      k = (k + 1) % ids.length
      replaced++
    }
    if (Date.now() >= nextSample) {
      samples.push({ t: (Date.now() - t0) / 1000, rss: process.memoryUsage.rss() })
      nextSample += 1000
    }
    await yieldLoop()
  }
  const seconds = (Date.now() - t0) / 1000
  const end = await settle()
  churn = {
    seconds,
    sessions: store.size,
    replaced,
    rssStart: start.rss,
    rssEnd: end.rss,
    heapUsedStart: start.heapUsed,
    heapUsedEnd: end.heapUsed,
    rssMaxSampled: Math.max(...samples.map(s => s.rss)),
    samples
  }
}

const result = { type: 'result', names, levels, sampleJsonBytes, churn }
await app.close()
await store.close()
if (process.send !== undefined) process.send(result, () => process.exit(0))
else console.log(JSON.stringify(result))
