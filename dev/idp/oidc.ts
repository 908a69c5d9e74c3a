/**
 * oidc-provider, typed. Version 9 ships no TypeScript declarations (and @types/oidc-provider
 * describes v8 and is not installed): the one untyped import lives here, with the subset of the
 * API this IdP relies on typed below.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
// @ts-ignore -- untyped module; `ts-ignore` rather than `ts-expect-error` so that adding types later does not break the build
import UntypedProvider, { errors as untypedErrors, interactionPolicy as untypedInteractionPolicy } from 'oidc-provider'

/**
 * The typed subset of oidc-provider's Provider used here and likely useful to tests.
 * (See the file comment: the package has no declarations.)
 */
export interface Provider {
  readonly issuer: string;
  callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  use(middleware: (ctx: ProviderContext, next: () => Promise<void>) => Promise<void>): Provider;
  on(event: string, listener: (...args: unknown[]) => void): Provider;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  Grant: GrantClass;
  /** The client model; its prototype's includeSid() decides whether ID tokens carry `sid`. */
  Client: { prototype: { includeSid(): boolean } };
  RefreshToken: { find(value: string): Promise<{ jti: string; accountId: string; clientId: string; grantId: string; consumed?: number } | undefined> };
}

export interface InteractionDetails {
  uid: string;
  grantId?: string;
  returnTo: string;
  params: Record<string, unknown> & { client_id?: string; login_hint?: string; scope?: string };
  prompt: {
    name: string;
    reasons: string[];
    details: {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
  };
  session?: { accountId?: string; uid?: string };
}

export interface Grant {
  accountId: string;
  clientId: string;
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(indicator: string, scope: string): void;
  save(): Promise<string>;
}
export interface GrantClass {
  new (init: { accountId: string; clientId: string }): Grant;
  find(id: string): Promise<Grant | undefined>;
}

/** The parts of oidc-provider's Koa context that this IdP touches. */
export interface ProviderContext {
  req: IncomingMessage;
  method: string;
  path: string;
  origin: string;
  query: Record<string, string | string[] | undefined>;
  body: unknown;
  type: string;
  status: number;
  /** Koa: a response header, and its removal. */
  response: { get(name: string): string };
  remove(name: string): void;
  oidc: {
    route?: string;
    body?: Record<string, unknown>;
    params: { scope?: string } & Record<string, unknown>;
    client?: OidcClient;
    account?: { accountId: string };
    session: { accountId?: string; authorizations?: Record<string, unknown>; grantIdFor(clientId: string): string | undefined; sidFor(clientId: string): string | undefined };
    result?: { consent?: { grantId?: string } };
    requestParamOIDCScopes: Set<string>;
    requestParamScopes: Set<string>;
    resourceServers: Record<string, { scopes: Set<string> }>;
    /** Set on the token endpoint once the grant ran. */
    entities?: { AccessToken?: { accountId?: string; clientId?: string; grantId?: string } };
  };
}
export interface OidcClient {
  clientId: string;
  grantTypeAllowed(type: string): boolean;
}
export interface OidcToken {
  accountId?: string;
  clientId?: string;
  grantId?: string;
  scope?: string;
  scopes: Set<string>;
}

export const OidcProvider = UntypedProvider as {
  new (issuer: string, configuration: Record<string, unknown>): Provider;
  /** The Koa context of the request being handled (AsyncLocalStorage), outside it undefined. */
  readonly ctx?: ProviderContext;
}

export const { Prompt, base: basePolicy } = untypedInteractionPolicy as {
  Prompt: new (opts: { name: string; requestable: boolean }) => unknown;
  base: () => unknown[] & { add(prompt: unknown, index?: number): void };
}

export const { InvalidTarget } = untypedErrors as { InvalidTarget: new (description?: string) => Error }
