// The gateway's own pages: whether the sign-in page is skipped, and how it looks.
import { EnvReader, type Section } from './readers.js'

export interface PagesSettings {
  autoRedirect: boolean
  title: string
  buttonLabel: string
  imageUrl: string | undefined
  logoFile: string | undefined
}

export function parsePages (env: NodeJS.ProcessEnv): Section<PagesSettings> {
  const r = new EnvReader(env)
  return r.section({
    autoRedirect: r.bool('OPENID_AUTO_REDIRECT', true),
    title: r.str('GATEWAY_TITLE') ?? 'LibreChat',
    buttonLabel: r.str('OPENID_BUTTON_LABEL') ?? 'Continue with Microsoft',
    imageUrl: r.url('OPENID_IMAGE_URL', 'https://chat.example.com/logo.png')?.href,
    logoFile: r.str('GATEWAY_LOGO_FILE')
  })
}
