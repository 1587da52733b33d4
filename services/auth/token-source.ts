/** What every outbound token source (outbound-tokens.ts, token-exchange.ts) answers to. */
/** What a token is asked for: the scope wanted (undefined: the source's own / the issuer's default). */
export interface TokenRequest {
  scope?: string;
  /** The job the request is for (a token-exchange source acts for that job's submitter). */
  jobId?: string;
}

/** A source of bearer tokens for one endpoint; `token` answers from its cache while the token is fresh. */
export interface TokenSource {
  /** Identity of the source (never the token): connections of different identities are never shared. */
  readonly id: string;
  /** Whether the source can ask for a scope per request (client credentials); others ignore `scope`. */
  readonly scoped: boolean;
  token(req: TokenRequest): Promise<string>;
  close(): Promise<void>;
}

