// The doctor's only I/O: one HTTP GET (with the moments it was sent and answered, for the
// clock check) and one Redis PING. Each returns what happened instead of throwing, so the
// checks that read them stay plain functions.
import { Redis } from 'ioredis'
import type { EgressFetch } from '../egress/egress.js'

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

/** Why a request got no answer, in the words an operator needs. */
export function describeNetworkError (err: unknown, timeoutMs: number): string {
  const e = err as { name?: string, message?: string, code?: string, cause?: { code?: string, message?: string } }
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `no answer within ${timeoutMs} ms`
  const code = e?.cause?.code ?? e?.code
  switch (code) {
    case 'ENOTFOUND': case 'EAI_AGAIN': return 'host name not found (DNS)'
    case 'ECONNREFUSED': return 'connection refused (nothing listening there)'
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
  if (message === 'bad port') return 'the port is one fetch refuses to connect to (a blocked port such as 1, 9 or 6000): use another'
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
    return { url, error: describeNetworkError(err, timeoutMs), sentAt, receivedAt: now() }
  }
}

export interface RedisProbe {
  /** Set when Redis did not answer PONG. */
  error?: string
}

export async function redisPing (url: string, opts: ProbeOptions = {}): Promise<RedisProbe> {
  const timeoutMs = opts.timeoutMs ?? 2000
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null
  })
  let lastError: unknown
  client.on('error', (err: unknown) => { lastError = err })
  try {
    await client.connect()
    const answer = await client.ping()
    return answer === 'PONG' ? {} : { error: `answered ${String(answer)} to PING` }
  } catch (err) {
    const message = (err as Error)?.message ?? String(err)
    if (/NOAUTH|WRONGPASS|invalid password|invalid username-password/i.test(message)) return { error: `authentication failed (${message.split(' ')[0] ?? 'NOAUTH'})` }
    return { error: describeNetworkError(lastError ?? err, timeoutMs) }
  } finally {
    client.disconnect()
  }
}
