// The gateway's own outbound calls (discovery, JWKS, token, UserInfo, Graph, OPENID_IMAGE_URL,
// the doctor's probes) go through one fetch built once from the egress settings: each request
// goes to the proxy its URL's route names, or directly. The dispatcher is passed explicitly,
// never installed as undici's global dispatcher, so two apps in one process (the tests) each
// keep their own settings, and nothing another library installs globally reroutes these calls.
// The upstream never comes here: it has its own undici Pool (proxy/upstream.ts), and its health
// check uses `direct` below.
import { Agent, ProxyAgent, fetch as undiciFetch, type Dispatcher } from 'undici'
import type { EgressProxy, EgressSettings } from '../config/egress.js'

/**
 * fetch's shape, as openid-client's customFetch, jose's and the Graph client take it (their
 * body types differ only in TypeScript's view of Uint8Array; undici takes them all).
 */
export type EgressFetch = (url: string | URL, init?: Omit<RequestInit, 'body'> & { body?: unknown }) => Promise<Response>

/** Where one destination's requests go, and why (the doctor prints it). */
export type EgressRoute =
  | { kind: 'proxy', proxy: EgressProxy }
  | { kind: 'direct', why: 'no proxy is set for its scheme' | 'NO_PROXY is *' | `NO_PROXY names ${string}` }

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443 }

/**
 * The route of one URL, by undici's EnvHttpProxyAgent rule: a NO_PROXY entry matches the host
 * itself or any subdomain, on its port if it names one; otherwise https:// goes to the https
 * proxy and http:// to the http one. Loopback is not special (as in undici and curl): list
 * `localhost,127.0.0.1` in NO_PROXY for anything on the gateway's own host.
 */
export function egressRoute (settings: EgressSettings['egress'], url: string | URL): EgressRoute {
  const u = typeof url === 'string' ? new URL(url) : url
  const proxy = u.protocol === 'https:' ? settings.https : settings.http
  if (proxy === undefined) return { kind: 'direct', why: 'no proxy is set for its scheme' }
  if (settings.noProxyAll) return { kind: 'direct', why: 'NO_PROXY is *' }
  // The host without its port, IPv6 brackets kept (as undici compares it).
  const hostname = u.host.replace(/:\d*$/, '').toLowerCase()
  const port = Number.parseInt(u.port, 10) || (DEFAULT_PORTS[u.protocol] ?? 0)
  for (const entry of settings.noProxy) {
    if (entry.port !== 0 && entry.port !== port) continue
    if (hostname === entry.hostname || hostname.endsWith(`.${entry.hostname}`)) {
      return { kind: 'direct', why: `NO_PROXY names ${entry.hostname}${entry.port !== 0 ? `:${entry.port}` : ''}` }
    }
  }
  return { kind: 'proxy', proxy }
}

export interface Egress {
  readonly fetch: EgressFetch
  route: (url: string | URL) => EgressRoute
  close: () => Promise<void>
}

/** undici's fetch over one dispatcher, typed as the global fetch the libraries expect. */
function fetchOver (dispatcher: Dispatcher): EgressFetch {
  return async (url, init) => await (undiciFetch(url, { ...init, dispatcher } as Parameters<typeof undiciFetch>[1]) as unknown as Promise<Response>)
}

export function createEgress (settings: EgressSettings['egress']): Egress {
  const direct = new Agent()
  const proxies = new Map<string, ProxyAgent>()
  for (const p of [settings.https, settings.http]) {
    // proxyTunnel false: an http:// destination is asked for in absolute form, as curl does,
    // since proxies commonly refuse CONNECT to ports other than 443; https:// is tunnelled.
    if (p !== undefined && !proxies.has(p.url)) proxies.set(p.url, new ProxyAgent({ uri: p.url, proxyTunnel: false }))
  }
  const route = (url: string | URL): EgressRoute => egressRoute(settings, url)
  const dispatcher = proxies.size === 0
    ? direct
    : direct.compose(dispatch => (opts, handler) => {
      const r = route(opts.origin as string | URL)
      return r.kind === 'proxy' ? (proxies.get(r.proxy.url) as ProxyAgent).dispatch(opts, handler) : dispatch(opts, handler)
    })
  return {
    fetch: fetchOver(dispatcher),
    route,
    close: async () => { await Promise.all([direct.close(), ...[...proxies.values()].map(async p => { await p.close() })]) }
  }
}

/**
 * A fetch that always connects directly, whatever HTTP(S)_PROXY say and whatever global
 * dispatcher is installed (NODE_USE_ENV_PROXY, a library): for the upstream's health checks.
 */
export function createDirect (): { fetch: EgressFetch, close: () => Promise<void> } {
  const agent = new Agent()
  return { fetch: fetchOver(agent), close: async () => { await agent.close() } }
}

/** A proxy URL for display: its user name and password left out. */
export function showProxy (proxy: EgressProxy): string {
  try {
    const u = new URL(proxy.url)
    const auth = u.username !== '' || u.password !== '' ? '***@' : ''
    return `${u.protocol}//${auth}${u.host} (${proxy.variable})`
  } catch {
    return `(${proxy.variable})`
  }
}
