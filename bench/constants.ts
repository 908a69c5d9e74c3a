// Values shared by the bench's processes.
import { DEV_CLIENT_ID } from '../dev/client-id.js'

/** The upstream's answer on every non-SSE path: about the size of a small LibreChat API reply. */
export const JSON_BODY = JSON.stringify({ ok: true, service: 'bench-upstream', items: [1, 2, 3], note: 'a fixed, small JSON body' })

/** The path every load run requests. */
export const LOAD_PATH = '/api/bench/ping'

/** The bench's IdP client (registered with every gateway's callback URL). */
export const CLIENT_ID = DEV_CLIENT_ID
export const CLIENT_SECRET = 'bench-client-secret-0123456789abcdef'

/** The IdP client Apache + mod_auth_openidc signs in as (its own, with its own redirect URI). */
export const APACHE_CLIENT_ID = 'bench-apache-mod-auth-openidc'
export const APACHE_CLIENT_SECRET = 'bench-apache-client-secret-0123456789abcdef'
