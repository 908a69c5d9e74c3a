// The one outbound fetch of this app (egress.ts), built once at start from the configuration
// and closed with the app. Every plugin that calls out (discovery, bearer, tokens, pages)
// takes it from here.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { createEgress, showProxy, type Egress } from './egress.js'

declare module 'fastify' {
  interface FastifyInstance {
    egress: Egress
  }
}

async function egressPlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const settings = opts.config.egress
  const egress = createEgress(settings)
  app.decorate('egress', egress)
  app.addHook('onClose', async () => { await egress.close() })
  if (settings.https !== undefined || settings.http !== undefined) {
    app.log.info({
      event: 'egress_proxy',
      https: settings.https !== undefined ? showProxy(settings.https) : 'direct',
      http: settings.http !== undefined ? showProxy(settings.http) : 'direct',
      noProxy: settings.noProxyAll ? '*' : settings.noProxy.map(e => e.port !== 0 ? `${e.hostname}:${e.port}` : e.hostname)
    }, 'outbound calls to the IdP and Graph go through a proxy; the upstream never does')
  }
}

export default fp(egressPlugin, { name: 'egress', fastify: '5.x' })
