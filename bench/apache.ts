// The peer a user would pick instead of the gateway: Debian's Apache 2.4 with mod_auth_openidc
// (packages apache2 and libapache2-mod-auth-openidc), a reverse proxy that signs users in
// against the same local IdP and keeps its sessions in shared memory (OIDCCacheType shm). The
// bench runs its own instance in the foreground, from a temp dir with a generated config, on a
// free loopback port; nothing of the system's /etc/apache2 is read and no service is started.
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { descendantsOf, trackChild, untrackChild } from './lib.js'

const MODULES = '/usr/lib/apache2/modules'
const OPENIDC_MODULE = path.join(MODULES, 'mod_auth_openidc.so')

/** mod_auth_openidc's session cookie (its default name). */
export const APACHE_SESSION_COOKIE = 'mod_auth_openidc_session'

/** The path mod_auth_openidc answers the IdP's redirect on (registered at the IdP). */
export const APACHE_REDIRECT_PATH = '/redirect_uri'

/** The apache2 binary when it and mod_auth_openidc are installed; otherwise why not. */
export function findApache (): { binary: string } | { missing: string } {
  const binary = ['/usr/sbin/apache2', '/usr/local/sbin/apache2'].find(existsSync)
  if (binary === undefined) return { missing: 'apache2 is not installed' }
  if (!existsSync(OPENIDC_MODULE)) return { missing: `mod_auth_openidc is not installed (no ${OPENIDC_MODULE})` }
  return { binary }
}

export interface ApacheOptions {
  port: number
  upstreamPort: number
  /** The IdP's issuer (no trailing slash); discovery is read from it at the first sign-in. */
  issuer: string
  clientId: string
  clientSecret: string
}

export interface Apache {
  url: string
  version: string
  /** The parent process; its children serve the requests (count them all: treeTicks). */
  pid: number
  stop: () => Promise<void>
}

function packageVersion (name: string): string | undefined {
  // dpkg's own field syntax, not a template.
  const q = spawnSync('dpkg-query', ['-W', '-f=$' + '{Version}', name], { encoding: 'utf8' })
  return q.status === 0 && q.stdout.trim() !== '' ? q.stdout.trim() : undefined
}

export async function startApache (binary: string, opts: ApacheOptions): Promise<Apache> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'entra-gw-bench-apache-'))
  // Started as root, Apache's children run as www-data and open files of this dir.
  chmodSync(dir, 0o755)
  const origin = `http://127.0.0.1:${opts.port}`
  const asRoot = process.getuid?.() === 0
  const conf = `# written by bench/apache.ts for one bench run
ServerRoot ${path.dirname(MODULES)}
ServerName 127.0.0.1
Listen 127.0.0.1:${opts.port}
DefaultRuntimeDir ${dir}
PidFile ${dir}/apache2.pid
ErrorLog ${dir}/error.log
LogLevel warn
DocumentRoot ${dir}
${asRoot ? 'User www-data\nGroup www-data\n' : ''}
LoadModule mpm_event_module modules/mod_mpm_event.so
LoadModule authn_core_module modules/mod_authn_core.so
LoadModule authz_core_module modules/mod_authz_core.so
LoadModule authz_user_module modules/mod_authz_user.so
LoadModule proxy_module modules/mod_proxy.so
LoadModule proxy_http_module modules/mod_proxy_http.so
LoadModule auth_openidc_module modules/mod_auth_openidc.so

# Debian's mpm_event.conf as installed.
StartServers 2
MinSpareThreads 25
MaxSpareThreads 75
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0

KeepAlive On
KeepAliveTimeout 5
# Node and Fastify put no cap on requests per connection, nor does nginx in this bench.
MaxKeepAliveRequests 0
# No access log, as nginx's access_log off.

OIDCProviderMetadataURL ${opts.issuer}/.well-known/openid-configuration
OIDCClientID ${opts.clientId}
OIDCClientSecret ${opts.clientSecret}
OIDCRedirectURI ${origin}${APACHE_REDIRECT_PATH}
OIDCCryptoPassphrase ${randomBytes(32).toString('hex')}
# The gateway's scopes: its session too holds a refresh token.
OIDCScope "openid profile email offline_access"
# Sessions in shared memory (its defaults, spelled out).
OIDCSessionType server-cache
OIDCCacheType shm
# Rounds of one target can be minutes apart on a busy machine; the default 300 s could end the
# session between them.
OIDCSessionInactivityTimeout 3600
# Who is sent to sign in: its default also returns 401 when Sec-Fetch-Mode is not "navigate",
# and Node's fetch (the bench's scripted browser) sends "cors" on every request whatever it is
# told. So only Accept decides, as for the gateway: HTML gets the redirect, an API call a 401.
# Anonymous requests only; a signed-in request never evaluates it.
OIDCUnAuthAction 401 "%{HTTP_ACCEPT} !~ m#text/html#"

<Location />
  AuthType openid-connect
  Require valid-user
</Location>
ProxyPass ${APACHE_REDIRECT_PATH} !
ProxyPass / http://127.0.0.1:${opts.upstreamPort}/
`
  const confPath = path.join(dir, 'apache2.conf')
  writeFileSync(confPath, conf)
  const version = (spawnSync(binary, ['-v'], { encoding: 'utf8' }).stdout.match(/Server version: (\S+)/)?.[1] ?? 'Apache') +
    ` + mod_auth_openidc ${packageVersion('libapache2-mod-auth-openidc') ?? '(version unknown)'}`
  // -DFOREGROUND: the parent stays this process (no daemon); it forks the serving children.
  const child = spawn(binary, ['-d', path.dirname(MODULES), '-f', confPath, '-DFOREGROUND'], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' } })
  trackChild(child)
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const errorLog = (): string => existsSync(path.join(dir, 'error.log')) ? readFileSync(path.join(dir, 'error.log'), 'utf8') : ''
  const deadline = Date.now() + 10_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`apache2 exited with ${child.exitCode}: ${stderr}${errorLog()}`)
    try {
      // Any answer means it listens (for an anonymous request, a redirect to the IdP).
      const res = await fetch(origin + '/', { redirect: 'manual' })
      await res.arrayBuffer()
      break
    } catch {}
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`apache2 did not answer within 10 s: ${stderr}${errorLog()}`) }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  const pid = child.pid as number
  return {
    url: origin,
    version,
    pid,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit')
        // SIGTERM: the parent stops its children and exits.
        child.kill('SIGTERM')
        const timer = setTimeout(() => {
          for (const p of descendantsOf(pid)) { try { process.kill(p, 'SIGKILL') } catch {} }
          child.kill('SIGKILL')
        }, 5000)
        await exited
        clearTimeout(timer)
      }
      untrackChild(child)
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
