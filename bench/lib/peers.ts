// Opening and closing each peer's connection the way its docs show, with the same flags.
import { AMQPSession, builtinParsers } from '@cloudamqp/amqp-client'
import amqpConnectionManager from 'amqp-connection-manager'
import amqplib from 'amqplib'
import { Connection as RabbitConnection } from 'rabbitmq-client'
import { flags, type JsonValue, type RunContext } from './common.ts'
import { Connection as LapinConnection } from './lapinmq.ts'

/** lapinmq: one Connection (noDelay is always on in lapinmq). */
export function lapinConnection(url: string): LapinConnection {
  return new LapinConnection({ url, name: 'bench-lapinmq' })
}

/** amqplib: noDelay is a socket option. */
export function amqplibConnect(url: string): Promise<amqplib.ChannelModel> {
  return amqplib.connect(url, { noDelay: flags.noDelay })
}

/** amqp-connection-manager: connectionOptions go to amqplib's connect. */
export async function acmConnect(url: string): Promise<ReturnType<typeof amqpConnectionManager.connect>> {
  const manager = amqpConnectionManager.connect([url], { connectionOptions: { noDelay: flags.noDelay } })
  await manager.connect()
  return manager
}

/** rabbitmq-client: noDelay is a connection option. */
export async function rabbitConnect(url: string): Promise<RabbitConnection> {
  const rabbit = new RabbitConnection({
    url,
    noDelay: flags.noDelay,
    connectionName: 'bench-rabbitmq-client',
  })
  rabbit.on('error', (err) => console.error('rabbitmq-client:', err))
  await rabbit.onConnect(10_000)
  return rabbit
}

/**
 * @cloudamqp/amqp-client's recommended high-level AMQPSession. It has no noDelay option; its
 * tlsOptions are spread into the net.connect() options for amqp:// too, so noDelay goes there.
 */
export function cloudConnect(url: string): Promise<AMQPSession> {
  return AMQPSession.connect(url, { tlsOptions: { noDelay: flags.noDelay } as object })
}

/**
 * @cloudamqp/amqp-client with the codecs its README shows for objects: the built-in parsers and
 * `defaultContentType: 'application/json'`, so that `publish(object)` serializes it (no gzip coder:
 * no other peer compresses).
 */
export function cloudConnectJson(url: string) {
  return AMQPSession.connect(url, {
    tlsOptions: { noDelay: flags.noDelay } as object,
    parsers: builtinParsers,
    defaultContentType: 'application/json',
  })
}

/**
 * A peer's send to one queue, as a promise, and how to close what it opened. With `ctx.json` it is
 * given objects (`jsonValue`) and serializes them as the peer's docs show; else Buffer bodies.
 */
export interface PromiseSender {
  send: (body: Buffer | JsonValue) => Promise<unknown>
  close: () => Promise<void>
}

/**
 * The peers whose publish returns a promise (settled on the confirm, or once written when
 * `confirm` is false), each opened the way its docs show, with the same flags. S2 awaits one send
 * at a time; S1, S3, S6 keep a window of them.
 */
export const promiseSenders: Record<string, (ctx: RunContext, confirm?: boolean) => Promise<PromiseSender>> =
  {
    async 'rabbitmq-client'(ctx, confirm = true) {
      const rabbit = await rabbitConnect(ctx.url)
      const pub = rabbit.createPublisher({ confirm })
      const envelope = { routingKey: ctx.queue, durable: ctx.persistent, mandatory: flags.mandatory }
      // An object body is serialized by send() itself (JSON.stringify, contentType application/json).
      return {
        send: (body) => pub.send(envelope, body),
        close: async () => {
          await pub.close()
          await rabbit.close()
        },
      }
    },
    async '@cloudamqp/amqp-client'(ctx, confirm = true) {
      const options = { deliveryMode: ctx.persistent ? 2 : 1, mandatory: flags.mandatory, confirm }
      if (ctx.json) {
        // The session's codecs serialize the object (defaultContentType application/json).
        const session = await cloudConnectJson(ctx.url)
        const q = await session.queue(ctx.queue, { durable: true })
        return { send: (body) => q.publish(body as JsonValue, options), close: () => session.stop() }
      }
      const session = await cloudConnect(ctx.url)
      const q = await session.queue(ctx.queue, { durable: true })
      return { send: (body) => q.publish(body as Buffer, options), close: () => session.stop() }
    },
    async 'amqp-connection-manager'(ctx, confirm = true) {
      const manager = await acmConnect(ctx.url)
      // `json: true` (its README's way for objects) makes sendToQueue JSON.stringify them; it sets no
      // contentType, so the options name it, as the other peers' messages carry it.
      const json = ctx.json === true
      const wrapper = manager.createChannel({ confirm, json })
      await wrapper.waitForConnect()
      const options = json
        ? { persistent: ctx.persistent, mandatory: flags.mandatory, contentType: 'application/json' }
        : { persistent: ctx.persistent, mandatory: flags.mandatory }
      return {
        send: (body) => wrapper.sendToQueue(ctx.queue, body, options),
        close: async () => {
          await wrapper.close()
          await manager.close()
        },
      }
    },
  }
