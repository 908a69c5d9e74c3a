// Logging policy in one place: what a log line may hold is decided here, not at every call.
import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify'
import type { Bindings, ChildLoggerOptions } from 'pino'
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

type LogFn = (...args: unknown[]) => void
type Pinoish = FastifyBaseLogger & { isLevelEnabled?: (level: string) => boolean }

/**
 * A request's logger, made only when it first logs at an enabled level. pino's child()
 * serializes the bindings and sets up redaction, a few percent of a proxied request's CPU, and
 * the hot path logs nothing (sign-ins, denials and errors do). One small object per request,
 * its methods on the prototype.
 */
class LazyChild {
  readonly #parent: Pinoish
  readonly #bindings: Bindings
  readonly #opts: ChildLoggerOptions
  #real: FastifyBaseLogger | undefined
  constructor (parent: Pinoish, bindings: Bindings, opts: ChildLoggerOptions) {
    this.#parent = parent
    this.#bindings = bindings
    this.#opts = opts
  }

  #log (level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace', args: unknown[]): void {
    if (this.#real === undefined && this.#parent.isLevelEnabled?.(level) === false) return
    this.#real ??= this.#parent.child(this.#bindings, this.#opts)
    ;(this.#real[level] as LogFn)(...args)
  }

  fatal (...args: unknown[]): void { this.#log('fatal', args) }
  error (...args: unknown[]): void { this.#log('error', args) }
  warn (...args: unknown[]): void { this.#log('warn', args) }
  info (...args: unknown[]): void { this.#log('info', args) }
  debug (...args: unknown[]): void { this.#log('debug', args) }
  trace (...args: unknown[]): void { this.#log('trace', args) }
  silent (): void {}
  child (bindings: Bindings, opts?: ChildLoggerOptions): FastifyBaseLogger {
    this.#real ??= this.#parent.child(this.#bindings, this.#opts)
    return this.#real.child(bindings, opts)
  }

  get level (): string { return this.#real?.level ?? this.#parent.level }
  set level (v: string) {
    this.#real ??= this.#parent.child(this.#bindings, this.#opts)
    this.#real.level = v
  }
}

/** Fastify's childLoggerFactory (see LazyChild). */
export function lazyChildLogger (logger: FastifyBaseLogger, bindings: Bindings, opts: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyChild(logger, bindings, opts) as unknown as FastifyBaseLogger
}
