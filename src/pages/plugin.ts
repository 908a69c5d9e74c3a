// Decorates the reply with the two ways the gateway itself answers: an HTML page for people,
// JSON for API clients, chosen by the request's Accept header. Headers are computed once.
import { readFile } from 'node:fs/promises'
import { extname } from 'node:path'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { wantsHtml } from '../policy/request-kind.js'
import { STYLESHEET, JSON_NO_STORE, escapeHtml, pageHeaders, renderPage, type PageOptions } from './render.js'

export interface Problem {
  status: number
  /** Stable machine-readable code for JSON clients. */
  error: string
  /** Plain words for a person. */
  message: string
  /** The page a browser gets; by default the message under a title that names the status. */
  page?: PageOptions
  /** JSON whatever the Accept header says (answers to API calls that no page would help). */
  jsonOnly?: boolean
  json?: Record<string, unknown>
}

declare module 'fastify' {
  interface FastifyReply {
    page: (status: number, opts: PageOptions) => FastifyReply
    problem: (p: Problem) => FastifyReply
  }
}

async function pagesPlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  // The sign-out form's POST is answered with a redirect to the IdP or to the post-logout
  // page, and form-action governs where a form's redirects may go.
  const formTargets = new Set([new URL(config.issuer).origin, new URL(config.postLogoutRedirectUri).origin])
  // 'self' is DOMAIN_SERVER's origin only on DOMAIN_SERVER's host: a page on a host route's
  // site (a refusal with its sign-out form) needs it named.
  if (config.siteOrigins.size < 2) formTargets.delete(config.publicOrigin)
  const headers = pageHeaders([...formTargets])
  const logo = await loadAsset(config.logoFile, config.imageUrl, app)
  const brand = { title: config.title, logoUrl: logo !== undefined ? '/oauth2/assets/logo' : undefined }

  app.decorateReply('page', function (this: FastifyReply, status: number, page: PageOptions) {
    return this.code(status).headers(headers).send(renderPage(page, brand))
  })
  // The one way the gateway answers with an error of its own: one JSON shape for clients
  // ({ error, message, request_id, ...details }), a page for people.
  app.decorateReply('problem', function (this: FastifyReply, p: Problem) {
    if (p.jsonOnly !== true && wantsHtml(this.request.headers)) {
      const page = p.page ?? { title: p.status >= 500 ? 'Temporarily unavailable' : 'Request refused', body: `<p>${escapeHtml(p.message)}</p>` }
      return this.page(p.status, { ...page, detail: page.detail ?? `Request id ${this.request.id}` })
    }
    return this.code(p.status).headers(JSON_NO_STORE).send(JSON.stringify({ error: p.error, message: p.message, request_id: this.request.id, ...p.json }))
  })

  if (logo !== undefined) {
    app.get('/oauth2/assets/logo', { config: { session: false } }, (_request, reply) => {
      reply.headers({ 'content-type': logo.type, 'cache-control': 'public, max-age=3600', 'x-content-type-options': 'nosniff', 'content-security-policy': "default-src 'none'" }).send(logo.body)
    })
  }

  app.get('/oauth2/assets/gateway.css', { config: { session: false } }, (_request, reply) => {
    reply.header('content-type', 'text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(STYLESHEET)
  })
}

const IMAGE_TYPES: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp', '.ico': 'image/x-icon' }
const MAX_LOGO_BYTES = 512 * 1024

/**
 * The logo, read once at start and served by the gateway, so pages load no external asset:
 * GATEWAY_LOGO_FILE (a raster image file), else OPENID_IMAGE_URL fetched once. SVG is refused
 * (it can carry script). A logo that cannot be had is logged and left out.
 */
async function loadAsset (file: string | undefined, url: string | undefined, app: FastifyInstance): Promise<{ body: Buffer, type: string } | undefined> {
  try {
    if (file !== undefined) {
      const type = IMAGE_TYPES[extname(file).toLowerCase()]
      if (type === undefined) throw new Error('GATEWAY_LOGO_FILE must be a .png, .jpg, .gif, .webp or .ico file')
      const body = await readFile(file)
      if (body.length > MAX_LOGO_BYTES) throw new Error('GATEWAY_LOGO_FILE is larger than 512 KiB')
      return { body, type }
    }
    if (url !== undefined) {
      const res = await app.egress.fetch(url, { signal: AbortSignal.timeout(5000), redirect: 'error' })
      const type = (res.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? ''
      if (!res.ok || !Object.values(IMAGE_TYPES).includes(type)) throw new Error(`OPENID_IMAGE_URL answered ${res.status} ${type}`)
      const body = Buffer.from(await res.arrayBuffer())
      if (body.length > MAX_LOGO_BYTES) throw new Error('OPENID_IMAGE_URL is larger than 512 KiB')
      return { body, type }
    }
  } catch (err) {
    app.log.warn({ event: 'logo_unavailable', detail: (err as Error).message }, 'the logo could not be loaded; pages show none')
  }
  return undefined
}

export default fp(pagesPlugin, { name: 'pages', fastify: '5.x', dependencies: ['egress'] })
