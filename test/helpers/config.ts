// A valid configuration to vary in config tests, and the problems loadConfig names for one.
import { loadConfig, ConfigError } from '../../src/config.js'

export const BASE_ENV = Object.freeze({
  OPENID_ISSUER: 'https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0/',
  OPENID_CLIENT_ID: '8f7e6d5c-4b3a-4291-8c7d-6e5f4a3b2c1d',
  OPENID_CLIENT_SECRET: 'client-secret-value',
  OPENID_SESSION_SECRET: 'x'.repeat(40),
  DOMAIN_SERVER: 'https://chat.example.com',
  UPSTREAM_URL: 'http://api:3080'
})

/** loadConfig's problems for `env` (none when it loads); anything else thrown is rethrown. */
export function problemsOf (env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}
