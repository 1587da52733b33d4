/**
 * The catalogue of every stable error code the port can answer or record: HTTP status, whether trying again may
 * succeed, and one line of meaning. `CargoError` takes its defaults from here, the problem+json writer and the
 * README's error section are checked against it, so a code cannot exist in one place only.
 *
 * An instance may still override status or retryability where the same code covers cases that differ (an HTTP
 * 429 from a remote endpoint is retryable, a 403 is not, both are CARGO_ERR_HTTP_4XX).
 */
export interface ErrorSpec {
  /** HTTP status the gateway answers with (or, for transfer failures, the status recorded on the attempt). */
  readonly status: number;
  /** Whether retrying the same operation may succeed. */
  readonly retryable: boolean;
  /** One line, for the README and `cargoport` users. */
  readonly meaning: string;
}

/** Codes are added here first, then thrown. Keep the entries sorted by code. */
export const errorCatalogue: Readonly<Record<string, ErrorSpec>> = {
  CARGO_ERR_INTERNAL: { status: 500, retryable: true, meaning: 'A fault of the port itself (logged on the server); never the client\'s input.' },
};

/** The catalogue entry of `code`, if it has one. */
export function errorSpec(code: string): ErrorSpec | undefined {
  return Object.hasOwn(errorCatalogue, code) ? errorCatalogue[code] : undefined;
}
