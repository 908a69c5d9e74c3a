/**
 * A scripted browser over real HTTP: global fetch, one hop at a time, with a cookie jar, so the
 * end-to-end tests see every redirect and Set-Cookie the gateway and IdP send, and the bench
 * signs in through the local IdP (dev/idp.ts) the way a user does.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { isIP } from 'node:net'
import { Agent } from 'undici'

export interface BrowserRequestInit {
  method?: string
  headers?: Record<string, string>
  body?: string | URLSearchParams
}

export interface FollowResult {
  /** The first non-redirect response (body unread). */
  response: Response
  /** Every URL requested, in order; the last one produced `response`. */
  chain: string[]
}

interface StoredCookie {
  value: string
  /** Epoch ms; undefined for a session cookie. */
  expires?: number
  /** Creation order: earlier-created cookies are sent first, and a replaced cookie keeps its place (RFC 6265 5.3, 5.4). */
  created: number
}

/**
 * `localhost` and every name under it are loopback, as Chromium resolves them itself (RFC 6761
 * 6.3) whatever the system resolver says: tests name distinct sites `chat.example.localhost`,
 * `admin.example.localhost`, all served on 127.0.0.1.
 */
const LOOPBACK_NAMES = new Agent({
  connect: {
    lookup (hostname: string, options: { all?: boolean }, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) {
      if (!isLocalhostName(hostname)) {
        dnsLookup(hostname, options as never, callback as never)
        return
      }
      if (options.all === true) callback(null, [{ address: '127.0.0.1', family: 4 }])
      else callback(null, '127.0.0.1', 4)
    }
  } as never
})

function isLocalhostName (hostname: string): boolean {
  const h = hostname.toLowerCase()
  return h === 'localhost' || h.endsWith('.localhost')
}

/** RFC 6265 5.1.3: the host is the domain, or a host name (not an IP address) ending in "." and the domain. */
export function domainMatches (host: string, domain: string): boolean {
  if (host === domain) return true
  return isIP(host) === 0 && host.endsWith(domain) && host.charCodeAt(host.length - domain.length - 1) === 46
}

const NAVIGATE_HEADERS = {
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'sec-fetch-mode': 'navigate'
}

export interface BrowserOptions {
  navigate?: boolean
  /** Requests to `publicOrigin` go to `gateway` over plain http with X-Forwarded-Proto: https. */
  tlsProxy?: { publicOrigin: string, gateway: string }
}

export class Browser {
  /**
   * Host-only cookies per `host:port` (name -> cookie). The Path attribute is ignored, and the
   * port kept, on purpose: tests run each service on its own loopback port, and a host-wide jar
   * makes the tests independent of cookie paths.
   */
  readonly jar = new Map<string, Map<string, StoredCookie>>()
  /**
   * Cookies set with a Domain attribute, per domain (name -> cookie), as RFC 6265 has them: sent
   * to every host that domain-matches, whatever its port. A Domain the setting host does not
   * domain-match is refused, and so is a top-level one (no dot: `localhost`, `com`) unless it is
   * the host itself, as Chromium does (the Public Suffix List's implicit `*` rule).
   */
  readonly domainJar = new Map<string, Map<string, StoredCookie>>()
  #created = 0
  /** Every response this browser received: its URL (as requested), status and Set-Cookie headers. */
  readonly history: Array<{ url: string, status: number, setCookies: string[] }> = []
  /** follow() returns instead of requesting a URL that starts with this (the last chain entry). */
  stopBefore: string | undefined
  readonly #navigate: boolean
  readonly #proxy: BrowserOptions['tlsProxy']

  constructor (opts: BrowserOptions = {}) {
    this.#navigate = opts.navigate ?? true
    this.#proxy = opts.tlsProxy
  }

  /** One hop: no redirect following; sends and stores cookies. */
  async request (url: string, init: BrowserRequestInit = {}): Promise<Response> {
    // Cookies belong to the URL the browser sees, whatever hop carries the request.
    const visible = new URL(url)
    let target = visible
    const proxy = this.#proxy
    if (proxy !== undefined && target.origin === proxy.publicOrigin) {
      // What a TLS-terminating proxy in front does: plain http to the gateway, saying https.
      target = new URL(target.pathname + target.search, proxy.gateway)
      init = { ...init, headers: { ...init.headers, 'x-forwarded-proto': 'https', 'x-forwarded-host': new URL(proxy.publicOrigin).host } }
    }
    const method = (init.method ?? 'GET').toUpperCase()
    const headers = new Headers()
    // What a browser sends for a top-level navigation; gateways answer these with redirects
    // (API calls get 401 instead).
    if (this.#navigate && method === 'GET') for (const [k, v] of Object.entries(NAVIGATE_HEADERS)) headers.set(k, v)
    for (const [k, v] of Object.entries(init.headers ?? {})) headers.set(k, v)
    const cookie = this.#cookieHeader(visible.host, visible.hostname)
    if (cookie && !headers.has('cookie')) headers.set('cookie', cookie)

    const response = await fetch(target, {
      method,
      headers,
      body: method === 'GET' || method === 'HEAD' ? undefined : init.body,
      redirect: 'manual',
      ...(isLocalhostName(target.hostname) ? { dispatcher: LOOPBACK_NAMES } : {})
    } as RequestInit)
    this.history.push({ url, status: response.status, setCookies: response.headers.getSetCookie() })
    this.#store(visible.host, visible.hostname, response.headers.getSetCookie())
    return response
  }

  /** Follows 30x Location headers (relative ones resolved) until a non-redirect response. */
  async follow (url: string, init: BrowserRequestInit = {}, maxHops = 15): Promise<FollowResult> {
    const chain: string[] = []
    let current = url
    let currentInit: BrowserRequestInit = init
    for (let hop = 0; hop <= maxHops; hop++) {
      chain.push(current)
      const response = await this.request(current, currentInit)
      const location = response.headers.get('location')
      if (!isRedirect(response.status) || location === null) return { response, chain }
      const next = new URL(location, current)
      if (next.protocol !== 'http:' && next.protocol !== 'https:') return { response, chain }
      // A test that wants to act before a hop (the IdP's redirect to the callback) stops here.
      if (this.stopBefore !== undefined && next.href.startsWith(this.stopBefore)) {
        chain.push(next.href)
        return { response, chain }
      }
      await response.body?.cancel()
      const method = (currentInit.method ?? 'GET').toUpperCase()
      // Browsers turn POST into GET on 301/302/303 and drop the body; 307/308 keep both.
      if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === 'POST')) {
        currentInit = { headers: withoutBodyHeaders(currentInit.headers) }
      }
      current = next.href
    }
    throw new Error(`Browser.follow: more than ${maxHops} redirects; chain:\n  ${chain.join('\n  ')}`)
  }

  /** The stored (unexpired) value of a cookie the origin would be sent: its host-only one, else a Domain one. */
  cookie (origin: string, name: string): string | undefined {
    const url = new URL(origin)
    return this.#sendable(url.host, url.hostname).find(c => c.name === name)?.cookie.value
  }

  /** Puts a host-only cookie in the jar as if the origin had set it (a test planting or editing one). */
  setCookie (origin: string, name: string, value: string): void {
    const host = new URL(origin).host
    let cookies = this.jar.get(host)
    if (!cookies) this.jar.set(host, (cookies = new Map()))
    cookies.set(name, { value, created: cookies.get(name)?.created ?? this.#created++ })
  }

  /** What a request to `host` (host:port) sends: its host-only cookies and the Domain ones it matches, oldest first. */
  #sendable (host: string, hostname: string): Array<{ name: string, cookie: StoredCookie }> {
    const out: Array<{ name: string, cookie: StoredCookie }> = []
    const take = (cookies: Map<string, StoredCookie> | undefined): void => {
      for (const [name, cookie] of cookies ?? []) {
        if (isExpired(cookie)) cookies?.delete(name)
        else out.push({ name, cookie })
      }
    }
    take(this.jar.get(host))
    for (const [domain, cookies] of this.domainJar) if (domainMatches(hostname.toLowerCase(), domain)) take(cookies)
    return out.sort((a, b) => a.cookie.created - b.cookie.created)
  }

  #cookieHeader (host: string, hostname: string): string {
    return this.#sendable(host, hostname).map(({ name, cookie }) => `${name}=${cookie.value}`).join('; ')
  }

  #store (host: string, hostname: string, setCookies: string[]): void {
    for (const header of setCookies) {
      const [pair = '', ...attributes] = header.split(';')
      const eq = pair.indexOf('=')
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      let expires: number | undefined
      let maxAge: number | undefined
      let domain: string | undefined
      for (const attribute of attributes) {
        const [key = '', ...rest] = attribute.split('=')
        const attrValue = rest.join('=').trim()
        const lower = key.trim().toLowerCase()
        if (lower === 'max-age' && /^-?\d+$/.test(attrValue)) maxAge = Number(attrValue)
        else if (lower === 'expires') {
          const t = Date.parse(attrValue)
          if (!Number.isNaN(t)) expires = t
        } else if (lower === 'domain' && attrValue !== '') {
          // The last Domain attribute counts; a leading dot is ignored (RFC 6265 5.2.3).
          domain = attrValue.replace(/^\./, '').toLowerCase()
        }
      }
      // Max-Age wins over Expires (RFC 6265 5.3); zero or negative deletes.
      if (maxAge !== undefined) expires = Date.now() + maxAge * 1000
      const requestHost = hostname.toLowerCase()
      // A top-level Domain is a public suffix: host-only when it is the host, else refused (5.3 step 5).
      if (domain !== undefined && !domain.includes('.')) {
        if (domain !== requestHost) continue
        domain = undefined
      }
      // A Domain the host is not under is refused (5.3 step 6).
      if (domain !== undefined && !domainMatches(requestHost, domain)) continue
      const jar = domain !== undefined ? this.domainJar : this.jar
      const key = domain ?? host
      let cookies = jar.get(key)
      if (!cookies) jar.set(key, (cookies = new Map()))
      if (expires !== undefined && expires <= Date.now()) cookies.delete(name)
      else cookies.set(name, { value, expires, created: cookies.get(name)?.created ?? this.#created++ })
    }
  }
}

export class SignInError extends Error {
  readonly response: Response
  readonly chain: string[]
  constructor (message: string, result: FollowResult) {
    super(message)
    this.name = 'SignInError'
    this.response = result.response
    this.chain = result.chain
  }
}

/**
 * Signs in through the IdP like a user: GET startUrl (a gateway URL), follow to the IdP login
 * form, post the credentials, follow back until a non-redirect response (normally the page the
 * gateway sends the user back to). Throws SignInError when no login form shows up or the IdP
 * rejects the credentials.
 */
export async function signIn (browser: Browser, startUrl: string, username: string, password: string): Promise<FollowResult> {
  const first = await browser.follow(startUrl)
  const pageUrl = first.chain[first.chain.length - 1] ?? startUrl
  const html = await first.response.text()
  const form = parseForms(html, pageUrl).find((f) => 'username' in f.fields && 'password' in f.fields)
  if (!form) {
    throw new SignInError(
      `signIn: no IdP login form (username + password) at ${pageUrl} (HTTP ${first.response.status}). ` +
      `Redirects:\n  ${first.chain.join('\n  ')}\nBody starts: ${html.slice(0, 300)}`,
      first
    )
  }
  const result = await submitForm(browser, form, { username, password })
  const last = result.chain[result.chain.length - 1] ?? ''
  if (result.response.status === 401 && last === form.action) {
    const body = await result.response.text()
    const error = /role="alert"[^>]*>([^<]*)</.exec(body)?.[1] ?? 'login rejected'
    throw new SignInError(`signIn: the IdP rejected the credentials for ${JSON.stringify(username)}: ${decodeEntities(error)}`, result)
  }
  return result
}

export interface ParsedForm {
  /** Absolute action URL. */
  action: string
  method: string
  id?: string
  /** Named inputs with their values (hidden ones included; submit buttons excluded). */
  fields: Record<string, string>
}

/** Minimal HTML form extraction, enough for the IdP's login/logout pages and form_post pages. */
export function parseForms (html: string, pageUrl: string): ParsedForm[] {
  const forms: ParsedForm[] = []
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = parseAttributes(m[1] ?? '')
    const fields: Record<string, string> = {}
    for (const input of (m[2] ?? '').matchAll(/<(input|textarea|select)\b([^>]*)>/gi)) {
      const a = parseAttributes(input[2] ?? '')
      const type = (a.type ?? 'text').toLowerCase()
      if (a.name === undefined || type === 'submit' || type === 'button' || type === 'image') continue
      if ((type === 'checkbox' || type === 'radio') && !('checked' in a)) continue
      fields[a.name] = a.value ?? ''
    }
    forms.push({
      action: new URL(attrs.action ?? pageUrl, pageUrl).href,
      method: (attrs.method ?? 'GET').toUpperCase(),
      id: attrs.id,
      fields
    })
  }
  return forms
}

/** Submits a form as a browser would (urlencoded, navigation headers, Origin) and follows redirects. */
export async function submitForm (browser: Browser, form: ParsedForm, values: Record<string, string> = {}): Promise<FollowResult> {
  const body = new URLSearchParams({ ...form.fields, ...values })
  if (form.method === 'GET') {
    const url = new URL(form.action)
    url.search = body.toString()
    return await browser.follow(url.href)
  }
  return await browser.follow(form.action, {
    method: 'POST',
    headers: { ...NAVIGATE_HEADERS, origin: new URL(form.action).origin },
    body
  })
}

function parseAttributes (source: string): Record<string, string> {
  const attrs: Record<string, string> = {}
  for (const m of source.matchAll(/([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
    const name = (m[1] ?? '').toLowerCase()
    attrs[name] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '')
  }
  return attrs
}

function decodeEntities (value: string): string {
  return value.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, e: string) => {
    const lower = e.toLowerCase()
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16))
    if (lower.startsWith('#')) return String.fromCodePoint(parseInt(lower.slice(1), 10))
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[lower] ?? _
  })
}

function isRedirect (status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308
}

function isExpired (cookie: StoredCookie): boolean {
  return cookie.expires !== undefined && cookie.expires <= Date.now()
}

function withoutBodyHeaders (headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(headers ?? {})) {
    const lower = k.toLowerCase()
    if (lower !== 'content-type' && lower !== 'content-length' && lower !== 'origin') out[k] = v
  }
  return out
}
