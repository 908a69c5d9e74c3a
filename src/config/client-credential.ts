// The gateway's own credential at the token endpoint, when it is not a client secret: a
// certificate (a PEM file with the certificate and its private key, as Azure Identity reads
// AZURE_CLIENT_CERTIFICATE_PATH) or a federated token file (as the AKS workload identity
// webhook writes AZURE_FEDERATED_TOKEN_FILE). Read here, so a bad file is one line at start and
// the doctor sees the same; oidc/client-auth.ts reads the same files again when they change.
import { X509Certificate, createHash, createPrivateKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'

/** Which variable named the file, so every line about it names the one the operator set. */
export type CertificateVariable = 'OPENID_CLIENT_CERTIFICATE_PATH' | 'AZURE_CLIENT_CERTIFICATE_PATH'
export type PasswordVariable = 'OPENID_CLIENT_CERTIFICATE_PASSWORD' | 'AZURE_CLIENT_CERTIFICATE_PASSWORD'

export type ClientCredentialSettings =
  | { kind: 'secret' }
  | { kind: 'certificate', path: string, variable: CertificateVariable, password: string | undefined, passwordVariable: PasswordVariable }
  | { kind: 'federated', tokenFile: string }

/** A certificate and its key, ready to sign client assertions. */
export interface LoadedCertificate {
  key: KeyObject
  certificate: X509Certificate
  /** base64url SHA-256 of the DER: the assertion's `x5t#S256`. */
  x5tS256: string
  /** base64url SHA-1 of the DER: the assertion's `x5t`. */
  x5t: string
  /** Upper-case hex SHA-1: what the Entra portal shows as the certificate's Thumbprint. */
  sha1Hex: string
  notAfter: Date
}

export class CertificateFileError extends Error {
  /** The variable to fix: the path's, or the password's. */
  readonly variable: string
  constructor (variable: string, message: string) {
    super(message)
    this.name = 'CertificateFileError'
    this.variable = variable
  }
}

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g
const KEY_BLOCK = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/

/** Reads and checks the PEM file; throws CertificateFileError, one line naming the variable. */
export function loadCertificateFile (c: { path: string, variable: CertificateVariable, password: string | undefined, passwordVariable: PasswordVariable }): LoadedCertificate {
  let text: string
  try {
    text = readFileSync(c.path, 'utf8')
  } catch (err) {
    throw new CertificateFileError(c.variable, `${c.variable} names ${c.path}, which cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); point it at the PEM file holding the certificate and its private key, readable by the gateway.`)
  }
  return parseCertificatePem(text, c)
}

export function parseCertificatePem (text: string, c: { path: string, variable: CertificateVariable, password: string | undefined, passwordVariable: PasswordVariable }): LoadedCertificate {
  const certificates = (text.match(CERTIFICATE_BLOCK) ?? [])
  const keyPem = KEY_BLOCK.exec(text)?.[0]
  if (certificates.length === 0 || keyPem === undefined) {
    const what = certificates.length === 0 && keyPem === undefined ? 'no PEM certificate and no private key' : certificates.length === 0 ? 'no certificate (-----BEGIN CERTIFICATE-----)' : 'no private key (-----BEGIN PRIVATE KEY-----)'
    const pfx = text.includes('\u0000') || !text.includes('-----BEGIN') ? ' (a .pfx/.p12 file? convert it: openssl pkcs12 -in cert.pfx -out cert.pem)' : ''
    throw new CertificateFileError(c.variable, `${c.variable}: ${c.path} holds ${what}${pfx}; it must hold the certificate and its private key, both in PEM.`)
  }
  let key: KeyObject
  try {
    key = createPrivateKey({ key: keyPem, format: 'pem', ...(c.password !== undefined ? { passphrase: c.password } : {}) })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? ''
    const encrypted = keyPem.includes('ENCRYPTED')
    if (encrypted && c.password === undefined) {
      throw new CertificateFileError(c.passwordVariable, `${c.passwordVariable} is not set, but the private key in ${c.path} is encrypted; set it to the key's password.`)
    }
    if (encrypted || /DECRYPT|PASSPHRASE/i.test(code)) {
      throw new CertificateFileError(c.passwordVariable, `${c.passwordVariable} does not decrypt the private key in ${c.path}; set it to the password the key was exported with.`)
    }
    throw new CertificateFileError(c.variable, `${c.variable}: the private key in ${c.path} cannot be read (${code || (err as Error).message}).`)
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new CertificateFileError(c.variable, `${c.variable}: the key in ${c.path} is ${key.asymmetricKeyType ?? 'not an asymmetric key'}; Entra signs client assertions with RSA only: use an RSA certificate (2048 bits or more).`)
  }
  // A chain may follow the certificate: the one that matches the key is the app's.
  const certificate = certificates.map(pem => new X509Certificate(pem)).find(x => x.checkPrivateKey(key))
  if (certificate === undefined) {
    throw new CertificateFileError(c.variable, `${c.variable}: no certificate in ${c.path} matches its private key; put the certificate and the key it was issued for in one file.`)
  }
  const notAfter = new Date(certificate.validTo)
  return {
    key,
    certificate,
    x5tS256: createHash('sha256').update(certificate.raw).digest('base64url'),
    x5t: createHash('sha1').update(certificate.raw).digest('base64url'),
    sha1Hex: createHash('sha1').update(certificate.raw).digest('hex').toUpperCase(),
    notAfter
  }
}

export class FederatedTokenError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'FederatedTokenError'
  }
}

/** The federated token as the platform wrote it last; throws FederatedTokenError, one line. */
export function readFederatedToken (tokenFile: string): string {
  let text: string
  try {
    text = readFileSync(tokenFile, 'utf8').trim()
  } catch (err) {
    throw new FederatedTokenError(`AZURE_FEDERATED_TOKEN_FILE names ${tokenFile}, which cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); on AKS the workload identity webhook mounts it when the pod's service account is labeled azure.workload.identity/use: "true".`)
  }
  if (!/^[\w-]+\.[\w-]+\.[\w-]*$/.test(text)) {
    throw new FederatedTokenError(`AZURE_FEDERATED_TOKEN_FILE: ${tokenFile} does not hold a JWT; it must hold the token the platform issues for the workload (on AKS, the projected service account token).`)
  }
  return text
}
