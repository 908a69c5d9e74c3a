// Decorates the reply with the two ways the gateway itself answers: an HTML page for people,
// JSON for API clients, chosen by the request's Accept header. Headers are computed once.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { wantsHtml } from '../policy/request-kind.js'
import { STYLESHEET, pageHeaders, renderPage, type PageOptions } from './render.js'

export interface Problem {
  status: number
  /** Stable machine-readable code for JSON clients. */
  error: string
  /** Plain words for a person. */
  message: string
  page: PageOptions
  json?: Record<string, unknown>
}

declare module 'fastify' {
  interface FastifyReply {
    page: (status: number, opts: PageOptions) => FastifyReply
    problem: (p: Problem) => FastifyReply
  }
}

async function pagesPlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const headers = pageHeaders([new URL(opts.config.issuer).origin])
  const jsonHeaders = { 'cache-control': 'no-store', 'content-type': 'application/json; charset=utf-8' }

  app.decorateReply('page', function (this: FastifyReply, status: number, page: PageOptions) {
    return this.code(status).headers(headers).send(renderPage(page))
  })
  app.decorateReply('problem', function (this: FastifyReply, p: Problem) {
    if (wantsHtml(this.request.headers)) return this.page(p.status, { ...p.page, detail: p.page.detail ?? `Request id ${this.request.id}` })
    return this.code(p.status).headers(jsonHeaders).send(JSON.stringify({ error: p.error, message: p.message, request_id: this.request.id, ...p.json }))
  })

  app.get('/oauth2/assets/gateway.css', (_request, reply) => {
    reply.header('content-type', 'text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(STYLESHEET)
  })
}

export default fp(pagesPlugin, { name: 'pages', fastify: '5.x' })
