import { inspect } from 'node:util'
import type { MessageProperties } from '../properties.js'
import { parseJson } from '../util/json.js'

/** What `#parsed` holds before `json()` first ran. */
const unparsed: unique symbol = Symbol('unparsed')

/**
 * The reply to a call of an {@link RpcClient}, as the server sent it.
 *
 * @example
 * ```ts
 * const reply = await rpc.call('prices', 'EUR')
 * console.log(reply.body.toString(), reply.headers['x-source'])
 * ```
 */
export class RpcReply {
  /** The body as the server sent it. */
  readonly body: Buffer
  /** AMQP basic properties as the server sent them (`correlationId` is the call's). */
  readonly properties: MessageProperties
  /** Application headers (`properties.headers`, or `{}`). */
  readonly headers: Record<string, unknown>
  #parsed: unknown = unparsed

  /** @internal */
  constructor(body: Buffer, properties: MessageProperties) {
    this.body = body
    this.properties = properties
    this.headers = properties.headers ?? {}
  }

  /**
   * The body parsed as JSON (UTF-8), once: later calls return the same value. The type argument
   * only asserts the type.
   * @throws LapinError `INVALID_BODY` when the body is not valid JSON (the error never quotes it).
   */
  json<T = unknown>(): T {
    if (this.#parsed === unparsed) this.#parsed = parseJson(this.body, 'the body of the reply')
    if (this.#parsed instanceof Error) throw this.#parsed
    return this.#parsed as T
  }

  /** Never shows the body, only its size. */
  [inspect.custom](): string {
    return `RpcReply { correlationId: '${this.properties.correlationId}', bodyBytes: ${this.body.length} }`
  }
}
