// Logging policy in one place: what a log line may hold is decided here, not at every call.
import type { FastifyServerOptions } from 'fastify'
import type { GatewayConfig } from './config.js'

/**
 * Paths pino blanks out, in case an error or object carries them. Only names that mean a secret
 * wherever they appear get a wildcard: `code` and `state` do not (an error's `code` is
 * ECONNREFUSED, and must stay readable). The authorization code and state travel in the
 * callback's query string only: the `req` serializer below drops it, and these paths cover a
 * parsed query or callback-parameters object, the only other shape they could be logged in.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.access_token',
  '*.refresh_token',
  '*.id_token',
  '*.code_verifier',
  '*.client_secret',
  'query.code',
  'query.state',
  'req.query.code',
  'req.query.state',
  'params.code',
  'params.state'
]

interface RawRequestLike { method?: string, url?: string, socket?: { remoteAddress?: string } }

export function loggerOptions (config: Pick<GatewayConfig, 'logLevel'>): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      // The query string is dropped: the callback's carries the authorization code and state.
      req (req: RawRequestLike & { id?: string }) {
        const url = req.url ?? ''
        const q = url.indexOf('?')
        return { id: req.id, method: req.method, path: q === -1 ? url : url.slice(0, q), remoteAddress: req.socket?.remoteAddress }
      }
    }
  }
}
