/** The name of an AMQP reply code, as {@link LapinError.code} gives it. */
export type AmqpReplyCodeName =
  | 'CONTENT_TOO_LARGE'
  | 'NO_ROUTE'
  | 'NO_CONSUMERS'
  | 'CONNECTION_FORCED'
  | 'INVALID_PATH'
  | 'ACCESS_REFUSED'
  | 'NOT_FOUND'
  | 'RESOURCE_LOCKED'
  | 'PRECONDITION_FAILED'
  | 'FRAME_ERROR'
  | 'SYNTAX_ERROR'
  | 'COMMAND_INVALID'
  | 'CHANNEL_ERROR'
  | 'UNEXPECTED_FRAME'
  | 'RESOURCE_ERROR'
  | 'NOT_ALLOWED'
  | 'NOT_IMPLEMENTED'
  | 'INTERNAL_ERROR'

/**
 * Every code a {@link LapinError} can carry: lapinmq's own, the broker's reply codes by their AMQP
 * names, and `AMQP_<n>` for a reply code AMQP 0-9-1 does not name.
 */
export type LapinErrorCode =
  | 'UNROUTABLE'
  | 'PUBLISH_NACKED'
  | 'CONFIRM_TIMEOUT'
  | 'CONNECTION_CLOSED'
  | 'CHANNEL_CLOSED'
  | 'INVALID_MESSAGE'
  | 'INVALID_BODY'
  | 'CONSUMER_CANCELLED'
  | 'CONSUMER_TIMEOUT'
  | 'QUEUE_UNAVAILABLE'
  | 'PISCINA_NOT_INSTALLED'
  | 'TASK_MODULE_INVALID'
  | 'WORKER_CALLBACK_UNSUPPORTED'
  | 'WORKER_FAILED'
  | 'BUFFER_FULL'
  | 'MESSAGE_TOO_LARGE'
  | 'CONNECTION_FAILED'
  | 'TLS_CONFIG_INVALID'
  | 'TLS_VERIFY_FAILED'
  | 'RPC_TIMEOUT'
  | 'ABORTED'
  | 'NO_REPLY_TO'
  | AmqpReplyCodeName
  | `AMQP_${number}`

/**
 * Every error lapinmq raises is a {@link LapinError} with a stable string `code`.
 * Match on `err.code`, not on the message text.
 *
 * @example
 * ```ts
 * try {
 *   await publisher.sendMessage('orders', 'eu.new', body)
 * } catch (err) {
 *   if (err instanceof LapinError && err.code === 'UNROUTABLE') logger.warn({ code: err.code }, 'no queue bound')
 * }
 * ```
 */
export class LapinError extends Error {
  /** Stable, machine-readable error code (every code and when it happens: docs/errors.md in the repository). */
  readonly code: LapinErrorCode
  /** The AMQP reply code, when the broker sent one (e.g. 404, 312). */
  readonly replyCode: number | undefined
  /** The AMQP reply text, when the broker sent one. Never contains a password. */
  readonly replyText: string | undefined

  constructor(
    code: LapinErrorCode,
    message: string,
    options: { cause?: unknown; replyCode?: number | undefined; replyText?: string | undefined } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.replyCode = options.replyCode
    this.replyText = options.replyText
  }
}

/** The broker returned a mandatory message (`basic.return`): no queue is bound for its exchange and routing key. */
export class UnroutableError extends LapinError {
  /** Exchange the message was published to. */
  readonly exchange: string
  /** Routing key the message was published with. */
  readonly routingKey: string

  constructor(exchange: string, routingKey: string, replyCode: number, replyText: string) {
    super(
      'UNROUTABLE',
      `message to exchange '${exchange}' with routing key '${routingKey}' was returned: ${replyText}`,
      { replyCode, replyText },
    )
    this.exchange = exchange
    this.routingKey = routingKey
  }
}

/** The broker refused responsibility for a message (`basic.nack`), e.g. a full queue with `x-overflow: reject-publish`. */
export class PublishNackedError extends LapinError {
  constructor(exchange: string, routingKey: string) {
    super(
      'PUBLISH_NACKED',
      `broker nacked the message to exchange '${exchange}' with routing key '${routingKey}'`,
    )
  }
}

/** No confirm arrived before the deadline: the message's fate is unknown (it may still be delivered). */
export class ConfirmTimeoutError extends LapinError {
  constructor(timeoutMs: number, sent: boolean) {
    super(
      'CONFIRM_TIMEOUT',
      sent
        ? `no confirm from the broker within ${timeoutMs} ms; the message may or may not have been delivered`
        : `the message could not be sent within ${timeoutMs} ms (publisher window full or socket blocked)`,
    )
  }
}

/** The connection or channel closed (stopped, or lost) before the operation could complete. */
export class ConnectionClosedError extends LapinError {
  constructor(message: string, cause?: unknown) {
    super('CONNECTION_CLOSED', message, { cause })
  }
}

/** AMQP reply codes and the stable lapinmq code each maps to. */
const replyCodes: Readonly<Record<number, AmqpReplyCodeName>> = {
  311: 'CONTENT_TOO_LARGE',
  312: 'NO_ROUTE',
  313: 'NO_CONSUMERS',
  320: 'CONNECTION_FORCED',
  402: 'INVALID_PATH',
  403: 'ACCESS_REFUSED',
  404: 'NOT_FOUND',
  405: 'RESOURCE_LOCKED',
  406: 'PRECONDITION_FAILED',
  501: 'FRAME_ERROR',
  502: 'SYNTAX_ERROR',
  503: 'COMMAND_INVALID',
  504: 'CHANNEL_ERROR',
  505: 'UNEXPECTED_FRAME',
  506: 'RESOURCE_ERROR',
  530: 'NOT_ALLOWED',
  540: 'NOT_IMPLEMENTED',
  541: 'INTERNAL_ERROR',
}

/** @internal Removes anything that looks like URL credentials from a text. */
export function redactText(text: string): string {
  return text.replace(/(amqps?:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@')
}

/**
 * @internal
 * Turns whatever amqplib or the socket threw into a {@link LapinError}. AMQP errors keep their reply
 * code and text; socket errors keep their errno code in the message. `cause` keeps the original.
 */
export function toLapinError(err: unknown, context: string): LapinError {
  if (err instanceof LapinError) return err
  const e = err as { code?: unknown; message?: unknown } | undefined
  const raw = redactText(typeof e?.message === 'string' ? e.message : String(err))
  const handshake = /(\d{3}) \(([A-Z-]+)\)/.exec(raw)
  const replyCode = typeof e?.code === 'number' ? e.code : handshake ? Number(handshake[1]) : undefined
  if (replyCode !== undefined) {
    const code = replyCodes[replyCode] ?? `AMQP_${replyCode}`
    return new LapinError(code, `${context}: ${raw}`, { cause: err, replyCode, replyText: raw })
  }
  return new LapinError('CONNECTION_FAILED', `${context}: ${raw}`, { cause: err })
}
