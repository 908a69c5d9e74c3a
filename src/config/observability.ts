// Logs and metrics.
import { EnvReader, type Section } from './readers.js'
import type { UpstreamSettings } from './upstream.js'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

export interface ObservabilitySettings {
  logLevel: string
  metricsPort: number | undefined
}

export function parseObservability (env: NodeJS.ProcessEnv, upstream: Pick<UpstreamSettings, 'port'>): Section<ObservabilitySettings> {
  const r = new EnvReader(env)
  const logLevel = r.oneOf('LOG_LEVEL', LOG_LEVELS, 'info', `one of ${LOG_LEVELS.join(', ')}`)
  const metricsPort = r.str('METRICS_PORT') !== undefined ? r.int('METRICS_PORT', 0, 1, 65535) : undefined
  if (metricsPort !== undefined && metricsPort === upstream.port) r.problem('METRICS_PORT', 'METRICS_PORT must differ from PORT: metrics are never served on the public port.')
  return r.section({ logLevel, metricsPort })
}
