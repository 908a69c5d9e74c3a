// Whether a request is a browser navigation (may be redirected to sign in) or an API call
// (gets 401 JSON: a redirect would only confuse fetch/XHR and break streaming clients).
import type { IncomingHttpHeaders } from 'node:http'

export function isNavigation (method: string, headers: IncomingHttpHeaders): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false
  if (headers['sec-fetch-mode'] === 'navigate') return true
  const accept = headers.accept
  return typeof accept === 'string' && accept.includes('text/html')
}

/** Whether the client would rather read JSON than an HTML page. */
export function wantsHtml (headers: IncomingHttpHeaders): boolean {
  const accept = headers.accept
  return typeof accept === 'string' && accept.includes('text/html')
}
