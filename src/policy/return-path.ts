// Where a user may be sent back to after sign-in: only a same-origin relative path.
// Everything else (absolute URLs, protocol-relative `//host`, backslash tricks that browsers
// read as `//`, encoded or whitespace-padded variants of those) falls back to `/`.

const UNSAFE_CHARS = /[\u0000-\u001f\u007f\\\s]/ // eslint-disable-line no-control-regex
const BASE = 'http://gateway.invalid'

function decodeRepeatedly (value: string): string | undefined {
  let current = value
  for (let i = 0; i < 5; i++) {
    let next: string
    try {
      next = decodeURIComponent(current)
    } catch {
      return undefined
    }
    if (next === current) return current
    current = next
  }
  return undefined // still changing after 5 rounds: refuse rather than guess
}

export function safeReturnPath (raw: unknown): string {
  if (typeof raw !== 'string' || raw === '' || raw.length > 2048) return '/'
  if (!raw.startsWith('/')) return '/'
  if (UNSAFE_CHARS.test(raw) || raw.startsWith('//')) return '/'
  // The path decides where a browser goes; encoded whitespace in the query is harmless.
  const end = raw.search(/[?#]/)
  const decodedPath = decodeRepeatedly(end === -1 ? raw : raw.slice(0, end))
  if (decodedPath === undefined || UNSAFE_CHARS.test(decodedPath) || decodedPath.startsWith('//')) return '/'
  let url: URL
  try {
    url = new URL(raw, BASE)
  } catch {
    return '/'
  }
  if (url.origin !== BASE) return '/'
  const result = url.pathname + url.search + url.hash
  return result.startsWith('//') ? '/' : result
}
