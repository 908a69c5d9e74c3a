// The outbound proxy: which egress proxy the gateway's own calls (the IdP, Graph, the sign-in
// image) go through. Read as undici's EnvHttpProxyAgent reads it (a lower-case variable wins
// over its upper-case twin, HTTPS_PROXY falls back to HTTP_PROXY, NO_PROXY names hosts reached
// directly), plus LibreChat's PROXY, which wins over both for every destination, as in
// LibreChat's own OpenID, JWKS and Graph calls (unlike LibreChat, NO_PROXY applies to it too:
// one rule for "reach this host directly"). The upstream is never proxied: it is not read here.
import { EnvReader, type Section } from './readers.js'

/** A proxy and the variable it was read from (for the doctor and the logs). */
export interface EgressProxy {
  /** The proxy URL as given (may hold a user name and password: never log it as is). */
  url: string
  variable: string
}

/** One NO_PROXY entry, parsed as undici parses it. */
export interface NoProxyEntry {
  /** Lower case, without a leading `.` or `*.`. */
  hostname: string
  /** 0: any port. */
  port: number
}

export interface EgressSettings {
  egress: {
    /** For http:// destinations. */
    http: EgressProxy | undefined
    /** For https:// destinations. */
    https: EgressProxy | undefined
    /** `NO_PROXY=*`: nothing is proxied. */
    noProxyAll: boolean
    noProxy: NoProxyEntry[]
    /** The variable NO_PROXY was read from, when set. */
    noProxyVariable: string | undefined
  }
}

const EXAMPLE = 'http://proxy.example.com:3128'

export function parseEgress (env: NodeJS.ProcessEnv): Section<EgressSettings> {
  const r = new EnvReader(env)
  // Every read unconditional (knownVariables); lower case first, as undici and curl read them.
  const proxy = proxyFrom(r, 'PROXY')
  const httpLower = proxyFrom(r, 'http_proxy')
  const httpUpper = proxyFrom(r, 'HTTP_PROXY')
  const httpsLower = proxyFrom(r, 'https_proxy')
  const httpsUpper = proxyFrom(r, 'HTTPS_PROXY')
  const noProxyLower = r.str('no_proxy')
  const noProxyUpper = r.str('NO_PROXY')

  const http = proxy ?? httpLower ?? httpUpper
  const https = proxy ?? httpsLower ?? httpsUpper ?? httpLower ?? httpUpper
  const noProxyRaw = noProxyLower ?? noProxyUpper
  const noProxyVariable = noProxyLower !== undefined ? 'no_proxy' : noProxyUpper !== undefined ? 'NO_PROXY' : undefined
  return r.section({
    egress: {
      http,
      https,
      noProxyAll: noProxyRaw === '*',
      noProxy: parseNoProxy(noProxyRaw ?? ''),
      noProxyVariable
    }
  })
}

/**
 * One proxy variable: an http:// or https:// URL (a user name and password in it are sent as
 * Proxy-Authorization). The problem never echoes the value, which may hold a password.
 */
function proxyFrom (r: EnvReader, name: string): EgressProxy | undefined {
  const raw = r.str(name)
  if (raw === undefined) return undefined
  let u: URL | undefined
  try {
    u = new URL(raw)
  } catch {}
  // "proxy:3128" parses as a URL of scheme "proxy:": a scheme is required either way.
  if (u === undefined || !/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    r.problem(name, `${name} must be a proxy URL with its scheme, such as ${EXAMPLE} (curl accepts a bare host:port, the gateway does not).`)
    return undefined
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    r.problem(name, `${name} must start with http:// or https:// (a ${u.protocol.slice(0, -1)} proxy is not supported); use an HTTP proxy such as ${EXAMPLE}.`)
    return undefined
  }
  if (u.hostname === '') {
    r.problem(name, `${name} names no proxy host; set it to a URL such as ${EXAMPLE}.`)
    return undefined
  }
  return { url: raw, variable: name }
}

/** Comma- or space-separated: `host`, `.domain` / `*.domain` (the domain and its subdomains), `host:port`. */
export function parseNoProxy (value: string): NoProxyEntry[] {
  const entries: NoProxyEntry[] = []
  for (const entry of value.split(/[,\s]/)) {
    if (entry === '') continue
    const m = /^(.+):(\d+)$/.exec(entry)
    entries.push({ hostname: (m !== null ? m[1] as string : entry).replace(/^\*?\./, '').toLowerCase(), port: m !== null ? Number(m[2]) : 0 })
  }
  return entries
}
