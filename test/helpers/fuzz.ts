// Pieces of the fuzz suite (test/e2e/fuzz.test.ts): a raw-socket HTTP client that can send
// what fetch and node:http refuse to, an upstream that records every request it gets, the
// fast-check arbitraries for hostile requests, and the invariants as pure checks.
//
// Requests are byte strings (one char per byte, sent as latin1), so a case can hold NUL, bare
// CR/LF, overlong UTF-8 or lone 0xff bytes exactly as they go on the wire.
import http from 'node:http'
import net from 'node:net'
import fc from 'fast-check'
import { listen } from '../../dev/http.js'
import type { UpstreamRequest } from '../../dev/upstream.js'

// ---------------------------------------------------------------------------------------------
// Raw client

export interface RawResponse {
  /** Undefined when the connection closed before a status line (a reset is a fine answer to junk). */
  status: number | undefined
  /** Lower-cased names. */
  headers: Record<string, string[]>
  body: string
  /** Nothing complete arrived before the deadline; the socket was destroyed. */
  timedOut: boolean
}

interface Parsed { complete: boolean, status: number | undefined, headers: Record<string, string[]>, body: Buffer }

/**
 * One response from what has arrived so far: interim 1xx answers (100 Continue) skipped,
 * the body framed by Content-Length or chunked coding, else read until the server closes.
 */
export function parseResponse (buf: Buffer, headRequest: boolean): Parsed {
  let offset = 0
  for (let interim = 0; interim < 10; interim++) {
    const end = buf.indexOf('\r\n\r\n', offset)
    if (end === -1) return { complete: false, status: undefined, headers: {}, body: Buffer.alloc(0) }
    const [statusLine = '', ...lines] = buf.subarray(offset, end).toString('latin1').split('\r\n')
    const m = /^HTTP\/\d\.\d (\d{3})/.exec(statusLine)
    if (m === null) return { complete: true, status: undefined, headers: {}, body: buf.subarray(offset) }
    const status = Number(m[1])
    const headers: Record<string, string[]> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      if (colon <= 0) continue
      const name = line.slice(0, colon).trim().toLowerCase()
      ;(headers[name] ??= []).push(line.slice(colon + 1).trim())
    }
    const start = end + 4
    if (status >= 100 && status < 200 && status !== 101) { offset = start; continue }
    if (headRequest || status === 101 || status === 204 || status === 304) return { complete: true, status, headers, body: Buffer.alloc(0) }
    if ((headers['transfer-encoding'] ?? []).join(',').toLowerCase().includes('chunked')) {
      const { complete, body } = dechunk(buf.subarray(start))
      return { complete, status, headers, body }
    }
    const length = headers['content-length']?.[0]
    if (length !== undefined && /^\d+$/.test(length)) {
      const n = Number(length)
      return { complete: buf.length - start >= n, status, headers, body: buf.subarray(start, start + n) }
    }
    return { complete: false, status, headers, body: buf.subarray(start) }
  }
  return { complete: true, status: undefined, headers: {}, body: buf }
}

function dechunk (buf: Buffer): { complete: boolean, body: Buffer } {
  const parts: Buffer[] = []
  let pos = 0
  for (let i = 0; i < 100_000; i++) {
    const eol = buf.indexOf('\r\n', pos)
    if (eol === -1) break
    const size = parseInt(buf.subarray(pos, eol).toString('latin1').split(';')[0] ?? '', 16)
    if (Number.isNaN(size)) return { complete: true, body: Buffer.concat(parts) }
    if (size === 0) return { complete: true, body: Buffer.concat(parts) }
    if (buf.length < eol + 2 + size + 2) break
    parts.push(buf.subarray(eol + 2, eol + 2 + size))
    pos = eol + 2 + size + 2
  }
  return { complete: false, body: Buffer.concat(parts) }
}

/** Writes the bytes on a fresh connection and reads one response (or what came before a close). */
export async function sendRaw (port: number, request: Buffer, opts: { head: boolean, timeoutMs: number }): Promise<RawResponse> {
  return await new Promise(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port })
    const chunks: Buffer[] = []
    let done = false
    const finish = (timedOut: boolean): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      const parsed = parseResponse(Buffer.concat(chunks), opts.head)
      resolve({ status: parsed.status, headers: parsed.headers, body: parsed.body.toString('utf8'), timedOut })
    }
    // A bound on the wait, not a speed check: a gateway that never answers a complete request is hung.
    const timer = setTimeout(() => finish(true), opts.timeoutMs)
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      if (parseResponse(Buffer.concat(chunks), opts.head).complete) finish(false)
    })
    // A reset or a close is an answer too (the server may drop junk without a word).
    socket.on('error', () => finish(false))
    socket.on('close', () => finish(false))
    socket.write(request)
  })
}

// ---------------------------------------------------------------------------------------------
// Recording upstream

export const CASE_HEADER = 'x-fuzz-case'

/** The case id a recorded request carries, if any. */
export function caseOf (record: RecordedRequest): string | undefined {
  const marker = record.headers[CASE_HEADER]
  if (typeof marker === 'string') return marker
  const agent = record.headers['user-agent']
  return typeof agent === 'string' ? /^fuzz-case\/(\S+)$/.exec(agent)?.[1] : undefined
}
export const UPSTREAM_BODY = '{"upstream":"ok"}'

export interface RecordedRequest extends UpstreamRequest {
  rawHeaders: string[]
  /** Arrived as an HTTP upgrade (a WebSocket handshake). */
  upgrade: boolean
}

export interface RecordingUpstream { url: string, requests: RecordedRequest[], close: () => Promise<void> }

/**
 * Records every request, upgrades included, and answers with a fixed body: no echo, so any
 * path, header or stack trace in a response body can only have come from the gateway.
 */
export async function startRecordingUpstream (): Promise<RecordingUpstream> {
  const requests: RecordedRequest[] = []
  const record = (req: http.IncomingMessage, upgrade: boolean): void => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers }, rawHeaders: [...req.rawHeaders], upgrade })
  }
  const server = http.createServer((req, res) => {
    record(req, false)
    req.on('error', () => res.destroy())
    req.resume()
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
      res.end(req.method === 'HEAD' ? undefined : UPSTREAM_BODY)
    })
  })
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    record(req, true)
    socket.on('error', () => {})
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
  })
  const url = await listen(server, '127.0.0.1', 0)
  return {
    url,
    requests,
    close: async () => await new Promise<void>((resolve, reject) => {
      server.close(err => (err ? reject(err) : resolve()))
      server.closeAllConnections()
    })
  }
}

// ---------------------------------------------------------------------------------------------
// Cases

export type Credential = 'none' | 'pending' | 'session'

export interface FuzzCase {
  method: string
  /** The request-target, as bytes. */
  target: string
  version: string
  /** Header lines as bytes, without the line end (they may hold a bare CR or LF, or no colon). */
  lines: string[]
  /** Which of the run's cookies the case carries: none, a started sign-in's, or alice's session. */
  credential: Credential
  /** Other cookie pairs around the credential (junk, prototype names, tampered gateway cookies). */
  cookies: string[]
  cookieAt: number
  cookieSeparator: string
  /** One Cookie line per pair instead of one for all. */
  splitCookies: boolean
  body: Body
}

export type Body =
  | { kind: 'none' }
  | { kind: 'length', data: string }
  | { kind: 'chunked', data: string, te: string }
  | { kind: 'both', data: string }

export interface Wire {
  port: number
  cookieName: string
  /** The short-lived cookie that holds a browser's pending sign-ins. */
  loginCookieName: string
  /** Cookie values as the jar holds them (as Set-Cookie sent them). */
  session: string
  pending: string
}

/** The Cookie header value(s) the case sends. */
export function cookieValues (c: FuzzCase, wire: Wire): string[] {
  const pairs = [...c.cookies]
  if (c.credential !== 'none') {
    const pair = c.credential === 'session' ? `${wire.cookieName}=${wire.session}` : `${wire.loginCookieName}=${wire.pending}`
    pairs.splice(Math.min(c.cookieAt, pairs.length), 0, pair)
  }
  if (pairs.length === 0) return []
  return c.splitCookies ? pairs : [pairs.join(c.cookieSeparator)]
}

/**
 * The bytes of the request. The case id goes first (a folded line can only attach to a header
 * after it), `Connection: close` last, and bodies are always complete (no Content-Length or
 * chunk size promises bytes that never come), so a correct server can always answer.
 */
export function serialize (c: FuzzCase, id: string, wire: Wire): Buffer {
  // The id twice: WebSocket upgrades reach the upstream with a few picked headers only (User-Agent is one).
  let head = `${c.method} ${c.target} ${c.version}\r\n${CASE_HEADER}: ${id}\r\nUser-Agent: fuzz-case/${id}\r\nHost: 127.0.0.1:${wire.port}\r\n`
  for (const line of c.lines) head += line + '\r\n'
  for (const value of cookieValues(c, wire)) head += `Cookie: ${value}\r\n`
  let body = ''
  if (c.body.kind === 'length') {
    head += `Content-Length: ${c.body.data.length}\r\n`
    body = c.body.data
  } else if (c.body.kind === 'chunked' || c.body.kind === 'both') {
    body = (c.body.data.length > 0 ? `${c.body.data.length.toString(16)}\r\n${c.body.data}\r\n` : '') + '0\r\n\r\n'
    head += `Transfer-Encoding: ${c.body.kind === 'chunked' ? c.body.te : 'chunked'}\r\n`
    if (c.body.kind === 'both') head += `Content-Length: ${body.length}\r\n`
  }
  // Close after the answer, unless the case speaks for the connection itself (keep-alive, an upgrade).
  if (!c.lines.some(line => /^connection\s*:/i.test(line))) head += 'Connection: close\r\n'
  head += '\r\n'
  return Buffer.from(head + body, 'latin1')
}

/** The whole case in a form that can be pasted into a reproduction (bytes JSON-escaped). */
export function describe (c: FuzzCase, id: string, wire: Wire): string {
  return JSON.stringify(serialize(c, id, wire).toString('latin1'))
    .replaceAll(wire.session, '<SESSION>')
    .replaceAll(wire.pending, '<PENDING>')
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** UTF-8 text as a byte string. */
const bytesOf = (text: string): string => Buffer.from(text, 'utf8').toString('latin1')

const charsOf = (chars: string): fc.Arbitrary<string> => fc.constantFrom(...chars.split(''))
const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
const alnum = (max: number): fc.Arbitrary<string> => fc.string({ unit: charsOf(ALNUM), minLength: 1, maxLength: max })
/** Printable ASCII (no CR/LF), optionally without some characters. */
const printable = (max: number, except = ''): fc.Arbitrary<string> => fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map(n => String.fromCharCode(n)).filter(ch => !except.includes(ch)),
  maxLength: max
})
const utf8 = (max: number): fc.Arbitrary<string> => fc.string({ unit: 'grapheme', minLength: 1, maxLength: max }).map(bytesOf)
const anyBytes = (max: number): fc.Arbitrary<string> => fc.string({ unit: fc.integer({ min: 0, max: 255 }).map(n => String.fromCharCode(n)), minLength: 1, maxLength: max })

/** Names a client must never get through to the upstream, in their canonical spelling. */
export const IDENTITY_BASES = [
  'x-forwarded-user', 'x-forwarded-email', 'x-forwarded-preferred-username', 'x-forwarded-name',
  'x-forwarded-groups', 'x-forwarded-groups-truncated', 'x-forwarded-roles', 'x-forwarded-tenant-id',
  'x-forwarded-identity', 'x-forwarded-access-token', 'x-forwarded-access-token-expires-on', 'x-forwarded-access-token-foo'
]
export const HOP_BASES = [
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-prefix',
  'x-forwarded-server', 'x-forwarded-uri', 'forwarded', 'x-real-ip', 'x-client-ip', 'x-original-url'
]

/** A spelling of a name: each letter's case and each `-` or `_` chosen by the bits (0: as given). */
export function spell (base: string, caseBits: number, underscoreBits: number): string {
  let out = ''
  let letter = 0
  let dash = 0
  for (const ch of base) {
    if (ch === '-') out += ((underscoreBits >>> (dash++ % 31)) & 1) === 1 ? '_' : '-'
    else out += ((caseBits >>> (letter++ % 31)) & 1) === 1 ? ch.toUpperCase() : ch
  }
  return out
}

const spelled = (bases: string[]): fc.Arbitrary<string> =>
  fc.tuple(fc.constantFrom(...bases), fc.nat(), fc.nat()).map(([b, c, u]) => spell(b, c, u))

const forgedValue = fc.oneof(
  fc.constantFrom('mallory', 'mallory@evil.example', 'admins,ADMIN', '203.0.113.9', 'for=203.0.113.9;proto=https;host=evil.example',
    'https', 'evil.example', '/api/admin', '443', '', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.', "UTF-8''mall%C3%B6ry"),
  printable(40),
  utf8(10)
)

/** A value with one control byte (or a line break that starts a new line or a folded one). */
const controlled = fc.tuple(printable(12), fc.constantFrom('\0', '\r', '\n', '\r\n', '\r\n ', '\n\t', '\x7f', '\x01', '\x1b', '\r\nX-Forwarded-User: mallory', '\nX_Forwarded_Email: m@evil.example'), alnum(6))
  .map(([a, ctl, b]) => a + ctl + b)

/** A complete WebSocket handshake: upgrades pass the same gate and get the same headers. */
export const WEBSOCKET = ['Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13']

export interface Context extends Wire {
  callbackPath: string
  /** Real states of the pending sign-in (a callback with one consumes it). */
  pendingStates: string[]
}

export function arbitraries (ctx: Context): {
  fullCase: fc.Arbitrary<FuzzCase>
  pathCase: fc.Arbitrary<FuzzCase>
  headerCase: fc.Arbitrary<FuzzCase>
  cookieCase: fc.Arbitrary<FuzzCase>
  callbackCase: fc.Arbitrary<FuzzCase>
} {
  const origin = `127.0.0.1:${ctx.port}`

  // --- request line
  const method = fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS') },
    { weight: 1, arbitrary: fc.constantFrom('TRACE', 'CONNECT', 'PROPFIND', 'QUERY', 'get', 'Get', 'G\0T', 'GET\t', 'A'.repeat(64), 'GE T', 'POST\x7f', 'M-SEARCH', 'PRI') },
    { weight: 1, arbitrary: alnum(10).map(m => m.toUpperCase()) }
  )
  const version = fc.oneof(
    { weight: 20, arbitrary: fc.constant('HTTP/1.1') },
    { weight: 3, arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/0.9', 'http/1.1', 'HTTP/1.1 ', 'HTTP/1.10', 'HTTP/9.9', 'HTTP/1.1\0', 'HTTP/1', 'HTTPS/1.1', '') }
  )

  const segment = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('api', 'config', 'admin', 'convos', 'c', 'images', 'oauth2', 'userinfo', 'healthz', 'oauth', 'openid', 'callback', 'token', 'jwks.json') },
    // The public and the restricted prefix, so that encodings around them are tried often.
    { weight: 4, arbitrary: fc.constantFrom('api/config', 'api/admin', 'API/Config', 'api/ADMIN', 'api/config/..', 'api/config/%2e%2e', 'api/config%2f..', 'api/config\\..', 'api%2fadmin', 'api/%61dmin', 'api/%63onfig') },
    // Encodings that decode: dot segments, slashes, backslashes, case, double encoding.
    { weight: 6, arbitrary: fc.constantFrom('..', '.', '', '%2e%2e', '%2E%2e', '.%2e', '%2e', '%2f', '%2F', '\\', '%5c', '%5C', '..\\', '%00', '%252e%252e', '%252f', ';', ';x=1', '%3b', '%23', '%3f', '~', '%7e', 'Config', 'CONFIG', '%63onfig', '%43ONFIG', 'ADMIN', '%61dmin', 'admin%00', 'admin.', 'admin%20', 'config%2f..%2fadmin', 'config%2f..', '..%2fadmin', '%2e%2e%2fadmin', 'config..', '%E2%80%AE', '%ef%bc%8f', 'ｃｏｎｆｉｇ') },
    // Escapes that do not decode: invalid, truncated, overlong UTF-8, %u.
    { weight: 1, arbitrary: fc.constantFrom('%', '%zz', '%4', '%c0%ae%c0%ae', '%c0%af', '%e0%80%ae', '%ff', '%fe%ff', '%u002e', '%ed%a0%80') },
    { weight: 2, arbitrary: alnum(8) },
    { weight: 1, arbitrary: utf8(4) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 4 }).map(encodeURIComponent) },
    { weight: 1, arbitrary: anyBytes(3) }
  )
  const pathPart = fc.array(segment, { maxLength: 6 }).map(s => s.join('/'))
  const queryValue = fc.oneof(
    fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype', '__defineGetter__', 'isPrototypeOf', '', '%', '%zz', '%00', '%E0%A4%A', '[]', '{}', 'null', 'undefined', 'NaN', '-1'),
    ...(ctx.pendingStates.length > 0 ? [fc.constantFrom(...ctx.pendingStates)] : []),
    alnum(40),
    printable(30, '&#').map(encodeURIComponent),
    printable(20, '&# '),
    fc.integer({ min: 200, max: 3000 }).map(n => 'q'.repeat(n))
  )
  const queryKey = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('state', 'code', 'state', 'code', 'error', 'error_description', 'iss', 'session_state', 'rd') },
    { weight: 2, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'state[]', 'state[0]', 'state[__proto__]', '__proto__[state]', 'constructor[prototype][x]', 'code[]', 'STATE', 'state ', '%73tate', 'st%00ate', '') },
    { weight: 1, arbitrary: alnum(8) }
  )
  const query = fc.array(fc.tuple(queryKey, queryValue, fc.constantFrom('=', '=', '=', '', '==')), { maxLength: 6 })
    .map(params => params.map(([k, v, eq]) => eq === '' ? k : `${k}${eq}${v}`).join('&'))
  const path = fc.tuple(
    fc.oneof({ weight: 10, arbitrary: fc.constant('/') }, { weight: 3, arbitrary: fc.constantFrom('//', '', '/\\', '\\', '/%2f', '/./', '/../', '//evil.example/', '/%20') }),
    pathPart,
    fc.option(query, { nil: undefined, freq: 2 }),
    fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('#', '#frag', '#/../admin') })
  ).map(([prefix, p, q, frag]) => prefix + p + (q === undefined ? '' : '?' + q) + (frag ?? ''))
  const target = fc.oneof(
    { weight: 10, arbitrary: path },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom(`http://${origin}`, 'http://evil.example', `HTTP://${origin}`, 'https://evil.example:443', `http://user:pw@${origin}`, 'file://', `ws://${origin}`), path.filter(p => p.startsWith('/'))).map(([o, p]) => o + p) },
    { weight: 1, arbitrary: fc.constantFrom('*', origin, 'evil.example:443', '', '%2f', '?', '@evil.example', '/a b', '/\0', '/\x7f', '/\xff', `/${'a'.repeat(9000)}`) }
  )

  // --- header lines
  const common: Array<[string, fc.Arbitrary<string>]> = [
    ['Accept', fc.constantFrom('text/html', 'application/json', '*/*', 'text/event-stream', 'text/html;q=0', '')],
    ['Sec-Fetch-Mode', fc.constantFrom('navigate', 'cors', 'no-cors', 'websocket', 'NAVIGATE', '')],
    ['Sec-Fetch-Site', fc.constantFrom('same-origin', 'cross-site', 'none')],
    ['Content-Type', fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-7', '*/*', ';', '')],
    ['Origin', fc.constantFrom(`http://${origin}`, 'http://evil.example', 'null', '', `http://${origin}.evil.example`)],
    ['Referer', fc.constantFrom(`http://${origin}/`, 'http://evil.example/', '')],
    ['Authorization', fc.oneof(fc.constantFrom('Bearer', 'Bearer ', 'Bearer a.b.c', 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', 'Basic YWxpY2U6YWxpY2U=', 'Negotiate x', ''), printable(60).map(s => 'Bearer ' + s))],
    ['Connection', fc.constantFrom('keep-alive', 'Keep-Alive', 'upgrade', 'Upgrade, HTTP2-Settings', 'close', 'keep-alive, X-Forwarded-User', 'x-forwarded-for', 'X-Forwarded-Identity, X-Forwarded-Email', 'cookie', 'host', 'te', 'authorization', '')],
    ['Keep-Alive', fc.constantFrom('timeout=5, max=100', '', 'x')],
    ['Upgrade', fc.constantFrom('websocket', 'WebSocket', 'h2c', 'TLS/1.2', 'foo/2', '')],
    ['Sec-WebSocket-Key', fc.constantFrom('dGhlIHNhbXBsZSBub25jZQ==', '', 'x')],
    ['Sec-WebSocket-Version', fc.constantFrom('13', '8', '')],
    ['HTTP2-Settings', fc.constantFrom('AAMAAABkAARAAAAAAAIAAAAA', '')],
    ['TE', fc.constantFrom('trailers', 'gzip', 'chunked', '')],
    ['Expect', fc.constantFrom('100-continue', '100-Continue', 'x', '')],
    ['Host', fc.constantFrom(origin, 'evil.example', '', 'a b', `${origin}:80`, '[::1]', '127.0.0.1:1')],
    ['Accept-Encoding', fc.constantFrom('gzip', 'br', 'gzip, deflate, br, zstd', 'identity;q=0', '*;q=0')],
    ['Range', fc.constantFrom('bytes=0-1', 'bytes=-1', 'bytes=1-0', 'x')],
    ['If-None-Match', fc.constantFrom('*', '"x"', '')],
    ['User-Agent', printable(40)],
    ['X-Requested-With', fc.constantFrom('XMLHttpRequest', '')],
    ['Proxy-Connection', fc.constantFrom('keep-alive', 'close')],
    ['Proxy-Authorization', fc.constantFrom('Basic YWxpY2U6YWxpY2U=', '')],
    ['Via', fc.constantFrom('1.1 evil', '')],
    ['Max-Forwards', fc.constantFrom('0', '-1', 'x')],
    ['X-HTTP-Method-Override', fc.constantFrom('DELETE', 'POST', 'CONNECT')],
    ['Content-Length', fc.constant('0')],
    ['Content-Encoding', fc.constantFrom('gzip', 'br', 'x')],
    ['Trailer', fc.constantFrom('X-Forwarded-User', 'Cookie')]
  ]
  const commonLine = fc.oneof(...common.map(([name, value]) => value.map(v => `${name}: ${v}`)))
  const protoName = fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype', '__defineSetter__', 'valueOf')
  const badNameChar = fc.constantFrom(' ', '\t', '(', ')', '"', '/', '[', ']', '?', '=', '{', '}', '@', ',', ';', '\\', '\0', '\x7f', '\x80', '\xff', bytesOf('é'), bytesOf('ı'))
  const forgedLine = fc.tuple(spelled([...IDENTITY_BASES, ...HOP_BASES]), forgedValue, fc.constantFrom(': ', ':', ':\t', ':  ')).map(([n, v, sep]) => n + sep + v)
  /** Lines a parser accepts: forged identity and connection headers, odd but legal values. */
  const wellFormedLine = fc.oneof(
    { weight: 6, arbitrary: forgedLine },
    { weight: 5, arbitrary: commonLine },
    { weight: 1, arbitrary: fc.tuple(protoName, printable(10)).map(([n, v]) => `${n}: ${v}`) },
    { weight: 1, arbitrary: fc.tuple(alnum(12), fc.oneof(printable(40), utf8(8))).map(([n, v]) => `X-${n}: ${v}`) }
  )
  /** Lines a parser should refuse (or that test its limits). */
  const malformedLine = fc.oneof(
    { weight: 2, arbitrary: fc.tuple(fc.oneof(spelled([...IDENTITY_BASES, ...HOP_BASES]), alnum(10)), fc.nat(), badNameChar, forgedValue).map(([n, at, ch, v]) => { const i = at % (n.length + 1); return `${n.slice(0, i)}${ch}${n.slice(i)}: ${v}` }) },
    { weight: 2, arbitrary: fc.tuple(fc.oneof(spelled(IDENTITY_BASES), fc.constantFrom('Accept', 'Cookie', 'User-Agent', 'Authorization')), controlled).map(([n, v]) => `${n}: ${v}`) },
    { weight: 1, arbitrary: fc.tuple(spelled([...IDENTITY_BASES, ...HOP_BASES]), forgedValue).map(([n, v]) => `${n} : ${v}`) },
    { weight: 1, arbitrary: fc.tuple(alnum(12), anyBytes(6).map(s => s.replace(/[\r\n]/g, ''))).map(([n, v]) => `X-${n}: ${v}`) },
    // No colon, a name only, a folded continuation, an empty name.
    { weight: 1, arbitrary: fc.constantFrom('X-Forwarded-User', ': mallory', ' X-Forwarded-User: mallory', '\tcontinued', ' folded', 'X-A', '\xff\xfe: x', '\0') },
    // Huge: past Node's 16 KiB header limit or just under it.
    { weight: 1, arbitrary: fc.tuple(fc.oneof(spelled(IDENTITY_BASES), fc.constantFrom('X-Big', 'Accept', 'Cookie', 'Authorization')), fc.integer({ min: 1000, max: 20_000 })).map(([n, size]) => `${n}: ${'a'.repeat(size)}`) }
  )
  // Duplicates: the same line many times (first/last-wins confusion, header count limits).
  const repeated = fc.tuple(fc.array(wellFormedLine, { maxLength: 3 }), fc.oneof(forgedLine, commonLine), fc.integer({ min: 2, max: 300 }))
    .map(([rest, line, n]) => [...rest, ...Array<string>(n).fill(line)])
  /** Mostly lines that get through the parser, so the gateway's own header handling is what is tested. */
  const lines = fc.oneof(
    { weight: 6, arbitrary: fc.array(wellFormedLine, { maxLength: 8 }) },
    { weight: 1, arbitrary: fc.array(wellFormedLine, { maxLength: 4 }).map(ls => [...WEBSOCKET, ...ls]) },
    { weight: 2, arbitrary: fc.tuple(fc.array(wellFormedLine, { maxLength: 6 }), malformedLine, fc.nat()).map(([ls, bad, at]) => { const out = [...ls]; out.splice(at % (ls.length + 1), 0, bad); return out }) },
    { weight: 1, arbitrary: repeated }
  )
  const anyLines = fc.array(fc.oneof(wellFormedLine, malformedLine), { maxLength: 8 })

  // --- cookies
  const decodedSession = decodeURIComponent(ctx.session)
  const decodedPending = decodeURIComponent(ctx.pending)
  /** A changed copy of a real signed cookie (its id or signature), so it can never be valid. */
  const tampered = fc.tuple(fc.constantFrom(decodedSession, decodedPending), fc.constantFrom('id', 'sig', 'cut', 'nosig', 'swap', 'append', 'dup'), fc.nat())
    .map(([value, how, n]) => {
      const dot = value.lastIndexOf('.')
      const id = value.slice(0, dot)
      const sig = value.slice(dot + 1)
      const flip = (s: string): string => {
        const i = n % s.length
        const ch = s[i] === 'A' ? 'B' : 'A'
        return s.slice(0, i) + ch + s.slice(i + 1)
      }
      const other = value === decodedSession ? decodedPending : decodedSession
      const changed = how === 'id'
        ? `${flip(id)}.${sig}`
        : how === 'sig'
          ? `${id}.${flip(sig)}`
          : how === 'cut'
            ? value.slice(0, Math.max(0, value.length - 1 - (n % 8)))
            : how === 'nosig'
              ? id
              : how === 'swap'
                ? `${id}.${other.slice(other.lastIndexOf('.') + 1)}`
                : how === 'append' ? `${value}x` : `${value}.${sig}`
      return encodeURIComponent(changed)
    })
  const junkName = fc.oneof(
    { weight: 3, arbitrary: alnum(10) },
    { weight: 2, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'refreshToken', 'token_provider', '$Version', '', ' ', ctx.cookieName.toUpperCase(), `${ctx.cookieName}x`, `x${ctx.cookieName}`, `__Host-${ctx.cookieName}`, `${ctx.cookieName}[]`) }
  )
  const junkValue = fc.oneof(
    printable(30, ';'),
    fc.constantFrom('"quoted"', '"', '%', '%zz', '%00', 'a=b', '=', '', 's%3Aabc.def', 'j:{"__proto__":{"x":1}}'),
    utf8(6),
    fc.integer({ min: 1000, max: 9000 }).map(n => 'c'.repeat(n))
  )
  const junkPair = fc.tuple(junkName, junkValue, fc.constantFrom('=', '=', ' = ', '')).map(([n, v, eq]) => eq === '' ? n : n + eq + v)
  /** Junk that names the gateway's cookie: only for cases without a credential. */
  const forgedGatewayCookie = fc.tuple(fc.oneof(tampered, junkValue), fc.constantFrom('', ' ')).map(([v, sp]) => `${sp}${ctx.cookieName}${sp}=${v}`)
  const credential = fc.constantFrom<Credential>('none', 'none', 'none', 'pending', 'session', 'session', 'session')
  const cookieParts = (cred: fc.Arbitrary<Credential>): fc.Arbitrary<Pick<FuzzCase, 'credential' | 'cookies' | 'cookieAt' | 'cookieSeparator' | 'splitCookies'>> =>
    fc.record({
      credential: cred,
      cookies: fc.array(fc.oneof({ weight: 4, arbitrary: junkPair }, { weight: 1, arbitrary: forgedGatewayCookie }), { maxLength: 5 }),
      cookieAt: fc.nat({ max: 5 }),
      cookieSeparator: fc.constantFrom('; ', '; ', ';', ' ;  ', ', ', ';;'),
      splitCookies: fc.boolean()
    }).map(parts => parts.credential === 'none' ? parts : { ...parts, cookies: parts.cookies.filter(p => !namesGatewayCookie(p, ctx.cookieName)) })

  // --- bodies (always complete, so a server is never left waiting)
  const bodyData = fc.oneof(printable(120), anyBytes(60), fc.constantFrom('{}', '{"__proto__":{"admin":true}}', 'state=__proto__&code=x', '[]'))
  const body: fc.Arbitrary<Body> = fc.oneof(
    { weight: 6, arbitrary: fc.constant({ kind: 'none' as const }) },
    { weight: 3, arbitrary: bodyData.map(data => ({ kind: 'length' as const, data })) },
    { weight: 2, arbitrary: fc.tuple(bodyData, fc.constantFrom('chunked', 'Chunked', 'gzip, chunked', 'chunked, identity', 'identity', 'xchunked', 'chunked;x', ' chunked', 'chunked\t', 'chunked, chunked')).map(([data, te]) => ({ kind: 'chunked' as const, data, te })) },
    { weight: 1, arbitrary: bodyData.map(data => ({ kind: 'both' as const, data })) }
  )

  const build = (parts: { method: fc.Arbitrary<string>, target: fc.Arbitrary<string>, version: fc.Arbitrary<string>, lines: fc.Arbitrary<string[]>, cred: fc.Arbitrary<Credential>, body: fc.Arbitrary<Body> }): fc.Arbitrary<FuzzCase> =>
    fc.record({ method: parts.method, target: parts.target, version: parts.version, lines: parts.lines, cookie: cookieParts(parts.cred), body: parts.body })
      .map(({ cookie, ...rest }) => ({ ...rest, ...cookie }))

  const accept = fc.constantFrom<string[]>([], ['Accept: application/json'], ['Accept: text/html'], ['Sec-Fetch-Mode: navigate'], WEBSOCKET)
  const plainPath = fc.constantFrom('/', '/api/convos', '/api/config', '/c/new', '/api/admin', '/oauth2/userinfo', '/images/x.png')
  return {
    fullCase: build({ method, target, version, lines: anyLines, cred: credential, body }),
    pathCase: build({ method, target, version: fc.constant('HTTP/1.1'), lines: accept, cred: credential, body: fc.constant({ kind: 'none' }) }),
    headerCase: build({ method: fc.constantFrom('GET', 'GET', 'POST', 'HEAD'), target: plainPath, version: fc.constant('HTTP/1.1'), lines, cred: credential, body }),
    cookieCase: build({ method: fc.constantFrom('GET', 'POST'), target: plainPath, version: fc.constant('HTTP/1.1'), lines: accept, cred: credential, body: fc.constant({ kind: 'none' }) }),
    callbackCase: build({
      method: fc.constantFrom('GET', 'GET', 'GET', 'GET', 'HEAD', 'POST'),
      target: fc.tuple(fc.constantFrom('', '', '', '/', '//', '%3F', '/x'), fc.option(query, { nil: undefined })).map(([after, q]) => ctx.callbackPath + after + (q === undefined ? '' : '?' + q)),
      version: fc.constant('HTTP/1.1'),
      lines: accept,
      cred: fc.constantFrom<Credential>('none', 'pending', 'pending', 'session'),
      body: fc.constant({ kind: 'none' })
    })
  }
}

/** Whether a cookie string names the gateway's cookie (however a parser might split or trim it). */
export function namesGatewayCookie (cookie: string, cookieName: string): boolean {
  return cookie.split(/[;,]/).some(pair => {
    const eq = pair.indexOf('=')
    return (eq === -1 ? pair : pair.slice(0, eq)).trim() === cookieName
  })
}

// ---------------------------------------------------------------------------------------------
// Invariants

/** Connection and identity headers: a client must never be the one who set them. */
export function isProtectedHeader (name: string): boolean {
  const n = name.toLowerCase().replaceAll('_', '-')
  return n.startsWith('x-forwarded-') || n === 'forwarded' || n === 'x-real-ip' || n === 'x-client-ip' || n === 'x-original-url'
}

export const PUBLIC_PREFIX = '/api/config'
export const RESTRICTED_PREFIX = '/api/admin'

/**
 * The ways an upstream may read a path: as received (dot segments resolved, `%2e` counting
 * as a dot, as WHATWG URL parsing does) and decoded once (`\` as `/`, as the gateway and
 * static file servers do). Lower-cased: Express routes ignore case.
 */
export function pathReadings (url: string): string[] {
  if (!url.startsWith('/')) return [url.toLowerCase()]
  const end = url.search(/[?#]/)
  const raw = end === -1 ? url : url.slice(0, end)
  const canon = (segments: string[], dot: (s: string) => string): string => {
    const out: string[] = []
    for (const seg of segments) {
      const d = dot(seg)
      if (d === '' || d === '.') continue
      if (d === '..') out.pop()
      else out.push(seg)
    }
    return ('/' + out.join('/')).toLowerCase()
  }
  const readings = [canon(raw.split('/'), s => s.replace(/%2e/gi, '.'))]
  let decoded: string | undefined
  try {
    decoded = decodeURIComponent(raw)
  } catch {
    decoded = undefined
  }
  if (decoded !== undefined) readings.push(canon(decoded.replace(/\\/g, '/').split('/'), s => s))
  return readings
}

export function under (path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(prefix + '/')
}

/**
 * Public as the rules define it (README, src/policy/rules.ts): the path decoded once, `\` as
 * `/`, dot segments resolved, case folded; a path that cannot be decoded is never public.
 * (The raw reading is not required to match too: `/api/%63onfig` is public by design.)
 */
export function surelyPublic (url: string): boolean {
  const decoded = pathReadings(url)[1]
  return decoded !== undefined && under(decoded, PUBLIC_PREFIX)
}

export function maybeRestricted (url: string): boolean {
  return pathReadings(url).some(r => under(r, RESTRICTED_PREFIX))
}

export interface Expectations {
  cookieName: string
  loginCookieName: string
  /** The protected headers the upstream got for alice (on a proxied path and on a public one). */
  signedIn: Array<Record<string, string>>
  /** ... and for an anonymous request to a public path. */
  anonymous: Record<string, string>
  /** Text that must not show up in a response unless the request itself held it. */
  leaks: string[]
}

export function protectedHeaders (headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (isProtectedHeader(name) && value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return out
}

/** Host values the case sent (x-forwarded-host may carry any of them). */
function sentHosts (c: FuzzCase, wire: Wire): string[] {
  const hosts = [`127.0.0.1:${wire.port}`]
  for (const line of c.lines) {
    const m = /^host\s*:(.*)$/is.exec(line)
    if (m !== null) hosts.push((m[1] ?? '').trim())
  }
  return hosts
}

function sameHeaders (got: Record<string, string>, want: Record<string, string>): string[] {
  const problems: string[] = []
  for (const name of new Set([...Object.keys(got), ...Object.keys(want)])) {
    if (name === 'x-forwarded-host') continue
    if (got[name] === want[name]) continue
    if (want[name] === undefined) problems.push(`${name}: ${JSON.stringify(got[name]).slice(0, 120)} reached the upstream (the gateway sets no such header here)`)
    else if (got[name] === undefined) problems.push(`${name} missing (the gateway's value is ${JSON.stringify(want[name]).slice(0, 60)})`)
    else problems.push(`${name}: ${JSON.stringify(got[name]).slice(0, 120)} instead of the gateway's ${JSON.stringify(want[name]).slice(0, 60)}`)
  }
  return problems
}

/** Invariants 2 and 3: what the client got back. */
export function responseViolations (response: RawResponse, sent: string, exp: Expectations): string[] {
  const problems: string[] = []
  if (response.timedOut) problems.push('invariant 1: no complete answer to a complete request (the gateway hung)')
  const status = response.status
  if (status !== undefined && status >= 500 && status !== 502 && status !== 503 && status !== 504) problems.push(`invariant 2: answered ${status}`)
  const text = response.body + '\n' + Object.entries(response.headers).map(([n, v]) => `${n}: ${v.join(', ')}`).join('\n')
  const stack = /(?:^|\\n|\n)\s*at .+:\d+:\d+\)?|Error: [^\n]*(?:\\n|\n)\s+at /.exec(text)
  if (stack !== null && !sent.includes(stack[0])) problems.push(`invariant 3: stack trace in the response: ${JSON.stringify(stack[0])}`)
  for (const leak of [...exp.leaks, '    at ', 'node:internal']) {
    if (text.includes(leak) && !sent.includes(leak)) problems.push(`invariant 3: response holds ${JSON.stringify(leak)}: …${JSON.stringify(text.slice(Math.max(0, text.indexOf(leak) - 80), text.indexOf(leak) + 80))}…`)
  }
  return problems
}

/** Invariants 4 and 5: what the upstream got for one case. */
export function upstreamViolations (c: FuzzCase, record: RecordedRequest, wire: Wire, exp: Expectations): string[] {
  const problems: string[] = []
  const what = `${record.upgrade ? 'upgrade ' : ''}${record.method} ${JSON.stringify(record.url.slice(0, 200))}`
  if (c.credential !== 'session' && !surelyPublic(record.url)) {
    problems.push(`invariant 4: a request without a session reached the upstream: ${what}`)
  }
  if (c.credential === 'session' && maybeRestricted(record.url)) {
    problems.push(`invariant 4: ${RESTRICTED_PREFIX} (role ADMIN, which alice lacks) reached the upstream: ${what}`)
  }
  for (const name of Object.keys(record.headers)) {
    if (isProtectedHeader(name) && name !== name.replaceAll('_', '-')) problems.push(`invariant 5: client-sent ${name} reached the upstream (${what})`)
  }
  const got = protectedHeaders(Object.fromEntries(Object.entries(record.headers).filter(([n]) => !n.includes('_'))))
  const host = got['x-forwarded-host']
  if (host !== undefined && !sentHosts(c, wire).includes(host)) problems.push(`invariant 5: x-forwarded-host ${JSON.stringify(host)} is no Host the client sent`)
  if (c.credential === 'session') {
    // On a public path a session the gateway could not read (a cookie glued to junk by `,`) is just anonymous.
    const diffs = [...exp.signedIn, ...(surelyPublic(record.url) ? [exp.anonymous] : [])].map(want => sameHeaders(got, want))
    const best = diffs.reduce((a, b) => (b.length < a.length ? b : a))
    if (!diffs.some(d => d.length === 0)) problems.push(...best.map(p => `invariant 5 (signed in): ${p} (${what})`))
  } else {
    problems.push(...sameHeaders(got, exp.anonymous).map(p => `invariant 5 (anonymous): ${p} (${what})`))
  }
  const cookie = record.headers.cookie
  if (typeof cookie === 'string' && cookie.split(';').some(p => [exp.cookieName, exp.loginCookieName].includes(p.split('=', 1)[0]?.trim() ?? ''))) {
    problems.push(`invariant 5: the gateway's own cookie reached the upstream (${what})`)
  }
  return problems
}
