/**
 * Why a service refused a request: `not_found` (no such object for this owner), `invalid` (the request itself
 * is wrong), `conflict` (the object's state forbids it now) or `retry_later` (it will succeed once the object
 * settles). The API turns each kind into its HTTP status; the message, code and param reach the client as is,
 * so they must never carry a path, a stack or another internal detail.
 */
export type RefusalKind = 'not_found' | 'invalid' | 'conflict' | 'retry_later';

export class Refused extends Error {
  override readonly name = 'Refused';

  constructor(
    readonly kind: RefusalKind,
    message: string,
    readonly code: string,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

export const notFound = (what: 'File' | 'Batch' | 'WebhookEndpoint', id: string) =>
  new Refused('not_found', `No such ${what} object: ${id.slice(0, 200)}`, 'not_found', 'id');
