// The doctor's only I/O: one HTTP GET (with the moments it was sent and answered, for the
// clock check) and one Redis PING. Each returns what happened instead of throwing, so the
// checks that read them stay plain functions.
import { connect } from 'node:net'
import type { EgressFetch } from '../egress/egress.js'
import type { RedisSettings } from '../config.js'
import { createRedisClient } from '../session/redis-client.js'

export interface HttpProbe {
  url: string
  /** Set when no HTTP answer came back at all. */
  error?: string
  status?: number
  /** The answer's Date header, when there was one. */
  date?: string
  body?: string
  /** Local clock (epoch ms) when the request left and when the answer arrived. */
  sentAt: number
  receivedAt: number
}

export interface ProbeOptions {
  timeoutMs?: number
  /** The local clock (tests skew it). */
  now?: () => number
}

/** Why a request got no answer, in the words an operator needs; `where` is host:port. */
export function describeNetworkError (err: unknown, timeoutMs: number, where?: string): string {
  const e = err as { name?: string, message?: string, code?: string, cause?: { code?: string, message?: string } }
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `no answer within ${timeoutMs} ms`
  const code = e?.cause?.code ?? e?.code
  switch (code) {
    case 'ENOTFOUND': case 'EAI_AGAIN': return 'host name not found (DNS)'
    case 'ECONNREFUSED': return where !== undefined ? `nothing listens on ${where} (connection refused)` : 'connection refused (nothing listening there)'
    case 'ECONNRESET': return 'connection reset'
    case 'EHOSTUNREACH': case 'ENETUNREACH': return 'host unreachable (network or firewall)'
    case 'ETIMEDOUT': case 'UND_ERR_CONNECT_TIMEOUT': return `no connection within ${timeoutMs} ms (firewall?)`
    case 'SELF_SIGNED_CERT_IN_CHAIN': case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY': case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE': case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return `TLS certificate not trusted (${code}; behind a TLS-inspecting proxy, point NODE_EXTRA_CA_CERTS at its CA)`
    case 'CERT_HAS_EXPIRED': return 'TLS certificate expired'
    case 'ERR_TLS_CERT_ALTNAME_INVALID': return 'TLS certificate is for another host name'
  }
  const message = e?.cause?.message ?? e?.message ?? String(err)
  const proxyStatus = /Proxy response \((\d+)\)/.exec(message)?.[1]
  if (proxyStatus === '407') return 'the outbound proxy wants credentials (HTTP 407): put them in the proxy URL, http://user:password@proxy:3128'
  if (proxyStatus !== undefined) return `the outbound proxy refused the connection (HTTP ${proxyStatus}): ask its administrators to allow this host`
  if (message === 'bad port') return `${where ?? 'that port'} is a port HTTP clients never connect to (blocked, like 1, 9 or 6000): move the app to another port`
  return code !== undefined ? `${code}: ${message}` : message
}

/**
 * `fetch` says how the request travels: the gateway's egress fetch for the IdP (through the
 * outbound proxy, as the gateway will), a direct one for the upstream.
 */
export async function httpGet (url: string, opts: ProbeOptions & { fetch: EgressFetch, accept?: string, maxBody?: number }): Promise<HttpProbe> {
  const timeoutMs = opts.timeoutMs ?? 5000
  const now = opts.now ?? Date.now
  const sentAt = now()
  try {
    const res = await opts.fetch(url, {
      redirect: 'manual',
      headers: { accept: opts.accept ?? 'application/json' },
      signal: AbortSignal.timeout(timeoutMs)
    })
    const receivedAt = now()
    let body: string | undefined
    if (opts.maxBody !== undefined) body = (await res.text()).slice(0, opts.maxBody)
    else await res.body?.cancel()
    return { url, status: res.status, date: res.headers.get('date') ?? undefined, body, sentAt, receivedAt }
  } catch (err) {
    const where = hostPort(url)
    let error = describeNetworkError(err, timeoutMs, where)
    // fetch refuses some ports without connecting: say whether anything listens there at all.
    if ((err as { cause?: { message?: string } })?.cause?.message === 'bad port' || (err as Error)?.message === 'bad port') {
      if (!await listens(where, timeoutMs)) error = `nothing listens on ${where} (and HTTP clients never connect to that port anyway: use another)`
    }
    return { url, error, sentAt, receivedAt: now() }
  }
}

/** `host:port` of a URL, the default port filled in. */
function hostPort (url: string): string {
  const u = new URL(url)
  return `${u.hostname}:${u.port !== '' ? u.port : u.protocol === 'https:' ? '443' : '80'}`
}

/** Whether a TCP connection to host:port is accepted. */
async function listens (where: string, timeoutMs: number): Promise<boolean> {
  const i = where.lastIndexOf(':')
  const host = where.slice(0, i).replace(/^\[|\]$/g, '')
  return await new Promise(resolve => {
    const socket = connect({ host, port: Number(where.slice(i + 1)), timeout: timeoutMs })
    const done = (ok: boolean): void => { socket.destroy(); resolve(ok) }
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
    socket.once('timeout', () => done(false))
  })
}

export interface RedisProbe {
  /** Set when Redis did not answer PONG. */
  error?: string
}

/**
 * PING through the client the gateway would build: for Sentinel that asks the sentinels for the
 * master and pings it, for a Cluster it loads the slots and pings a node. A string is a
 * REDIS_URL.
 */
export async function redisPing (target: RedisSettings | string, opts: ProbeOptions = {}): Promise<RedisProbe> {
  const timeoutMs = opts.timeoutMs ?? 2000
  const settings: RedisSettings = typeof target === 'string' ? { target: { kind: 'url', url: target }, username: undefined, password: undefined, tls: false } : target
  const client = createRedisClient(settings, { lazyConnect: true, connectTimeoutMs: timeoutMs, commandTimeoutMs: timeoutMs, retry: () => null })
  let lastError: unknown
  client.on('error', (err: unknown) => { lastError = err })
  // A Cluster or Sentinel client that cannot get anywhere may keep trying past retry: null.
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs * 2) })
  try {
    const answer = await Promise.race([client.connect().then(async () => await client.ping()), deadline])
    return answer === 'PONG' ? {} : { error: `answered ${String(answer)} to PING` }
  } catch (err) {
    const message = (err as Error)?.message ?? String(err)
    const auth = /NOAUTH|WRONGPASS|invalid password|invalid username-password/i
    if (auth.test(message) || auth.test((lastError as Error | undefined)?.message ?? '')) return { error: `authentication failed (${(auth.test(message) ? message : (lastError as Error).message).split(' ')[0] ?? 'NOAUTH'})` }
    return { error: describeNetworkError(lastError ?? err, timeoutMs) }
  } finally {
    clearTimeout(timer)
    client.disconnect()
  }
}

/** PING one listed node or sentinel on its own (with its password), to name the ones not answering. */
export async function redisPingNode (host: string, port: number, auth: { username?: string, password?: string }, opts: ProbeOptions & { tls?: boolean } = {}): Promise<RedisProbe> {
  return await redisPing({ target: { kind: 'url', url: `${opts.tls === true ? 'rediss' : 'redis'}://${host.includes(':') ? `[${host}]` : host}:${port}` }, username: auth.username, password: auth.password, tls: opts.tls === true }, opts)
}
