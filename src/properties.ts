/**
 * The AMQP basic properties of a message, as the broker delivered them. Properties the publisher
 * did not set are `undefined`.
 */
export interface MessageProperties {
  /** MIME type of the body, e.g. `application/json`. */
  contentType: string | undefined
  /** Encoding of the body, e.g. `gzip`. */
  contentEncoding: string | undefined
  /** Application headers. */
  headers: Record<string, unknown> | undefined
  /** 1: transient, 2: persistent. */
  deliveryMode: number | undefined
  /** 0..255, on queues with `x-max-priority`. */
  priority: number | undefined
  /** Ties a reply to its request. */
  correlationId: string | undefined
  /** The queue a reply goes to. */
  replyTo: string | undefined
  /** Per-message TTL in milliseconds, as a string. */
  expiration: string | undefined
  /** Application message id. */
  messageId: string | undefined
  /** Seconds since the epoch. */
  timestamp: number | undefined
  /** Application message type. */
  type: string | undefined
  /** The user that published it (checked by the broker when set). */
  userId: string | undefined
  /** The publishing application. */
  appId: string | undefined
  /** Deprecated in AMQP 0-9-1; kept as sent. */
  clusterId: string | undefined
}
