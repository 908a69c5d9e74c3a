// Microsoft Graph calls made with the signed-in user's delegated token: small functions over
// fetch that follow `@odata.nextLink` pages to a bound and honour 429 Retry-After within a
// bounded wait. The Graph host is a setting (sovereign clouds, tests), never hard-coded.

export interface GraphOptions {
  /** GRAPH_API_URL's origin, e.g. https://graph.microsoft.com. */
  baseUrl: string
  /** The egress fetch (the outbound proxy): required, so no call can silently go direct. */
  fetch: (url: string, init: RequestInit) => Promise<Response>
  /** Retries after a 429 or 5xx before giving up. */
  maxRetries?: number
  /** The longest single Retry-After we wait for; longer counts as a failure. */
  maxRetryWaitMs?: number
  maxPages?: number
  timeoutMs?: number
  /** Called for each throttled answer (metrics). */
  onThrottle?: () => void
  /** Called once per request with whether it finally succeeded (metrics). */
  onResult?: (ok: boolean) => void
}

export class GraphError extends Error {
  readonly status: number | undefined
  readonly code: string
  constructor (message: string, code: string, status?: number) {
    super(message)
    this.name = 'GraphError'
    this.code = code
    this.status = status
  }
}

const DEFAULTS = { maxRetries: 3, maxRetryWaitMs: 10_000, maxPages: 50, timeoutMs: 10_000 }

function retryAfterMs (res: Response, attempt: number): number {
  const header = res.headers.get('retry-after')
  if (header !== null && /^\d+$/.test(header)) return Number(header) * 1000
  return Math.min(8000, 500 * 2 ** attempt)
}

/** One Graph request with retries on 429/5xx; returns the parsed JSON body. */
export async function graphRequest (
  opts: GraphOptions,
  token: string,
  pathOrUrl: string,
  init: { method?: string, body?: unknown, headers?: Record<string, string> } = {}
): Promise<unknown> {
  const o = { ...DEFAULTS, ...opts }
  const url = pathOrUrl.startsWith('https://') || pathOrUrl.startsWith('http://') ? pathOrUrl : o.baseUrl + pathOrUrl
  // A nextLink must stay on the configured Graph host: the token is never sent elsewhere.
  if (new URL(url).origin !== new URL(o.baseUrl).origin) throw new GraphError('Graph answered with a link to another host', 'foreign_link')
  for (let attempt = 0; ; attempt++) {
    let res: Response
    try {
      res = await o.fetch(url, {
        method: init.method ?? 'GET',
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers },
        body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
        signal: AbortSignal.timeout(o.timeoutMs)
      })
    } catch (err) {
      if (attempt < o.maxRetries) continue
      o.onResult?.(false)
      throw new GraphError(`Graph is unreachable: ${(err as Error).message}`, 'unreachable')
    }
    if (res.ok) {
      o.onResult?.(true)
      return await res.json()
    }
    const body = await res.text().catch(() => '')
    const retriable = res.status === 429 || res.status >= 500
    if (res.status === 429) o.onThrottle?.()
    if (retriable && attempt < o.maxRetries) {
      const wait = retryAfterMs(res, attempt)
      if (wait <= o.maxRetryWaitMs) {
        await new Promise(resolve => setTimeout(resolve, wait))
        continue
      }
    }
    let code = res.status === 429 ? 'throttled' : `http_${res.status}`
    // A claims challenge (continuous access evaluation: the user's session was revoked, or
    // policy wants more): no token of this session will do again, only a new sign-in.
    const challenge = res.status === 401 ? res.headers.get('www-authenticate') ?? '' : ''
    if (/\berror\s*=\s*"?insufficient_claims\b/i.test(challenge)) {
      o.onResult?.(false)
      throw new GraphError('Graph answered a claims challenge (insufficient_claims)', 'insufficient_claims', 401)
    }
    try {
      const parsed = JSON.parse(body) as { error?: { code?: string } }
      if (typeof parsed.error?.code === 'string') code = parsed.error.code
    } catch {}
    o.onResult?.(false)
    throw new GraphError(`Graph answered ${res.status} (${code})`, code, res.status)
  }
}

interface Page<T> { value?: T[], '@odata.nextLink'?: string }

/** Every item of a paged collection, following nextLink up to maxPages. */
export async function graphCollect<T> (opts: GraphOptions, token: string, path: string, headers?: Record<string, string>, limit = Infinity): Promise<{ items: T[], complete: boolean }> {
  const maxPages = opts.maxPages ?? DEFAULTS.maxPages
  const items: T[] = []
  let next: string | undefined = path
  for (let page = 0; next !== undefined && page < maxPages && items.length < limit; page++) {
    const body = await graphRequest(opts, token, next, { headers }) as Page<T>
    items.push(...(body.value ?? []))
    next = body['@odata.nextLink']
  }
  return { items: items.slice(0, limit), complete: next === undefined }
}

/**
 * The user's transitive group ids (what an overage token leaves out). All pages, or an
 * error: a partial list would silently drop memberships.
 */
export async function transitiveGroupIds (opts: GraphOptions, token: string): Promise<string[]> {
  const { items, complete } = await graphCollect<{ id?: string }>({ ...opts, maxPages: opts.maxPages ?? 200 }, token, '/v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id&$top=999')
  if (!complete) throw new GraphError('group membership has more pages than the gateway reads', 'too_many_pages')
  return items.map(g => g.id).filter((id): id is string => typeof id === 'string')
}
