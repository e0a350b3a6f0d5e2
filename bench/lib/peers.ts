// Opening and closing each peer's connection the way its docs show, with the same flags.
import { AMQPSession } from '@cloudamqp/amqp-client'
import amqpConnectionManager from 'amqp-connection-manager'
import amqplib from 'amqplib'
import { Connection as RabbitConnection } from 'rabbitmq-client'
import { Connection as LapinConnection } from '../../src/index.ts'
import { flags, url } from './common.ts'

/** lapinmq: one Connection (noDelay is always on in lapinmq). */
export function lapinConnection(): LapinConnection {
  return new LapinConnection({ url, name: 'bench-lapinmq' })
}

/** amqplib: noDelay is a socket option. */
export function amqplibConnect(): Promise<amqplib.ChannelModel> {
  return amqplib.connect(url, { noDelay: flags.noDelay })
}

/** amqp-connection-manager: connectionOptions go to amqplib's connect. */
export async function acmConnect(): Promise<ReturnType<typeof amqpConnectionManager.connect>> {
  const manager = amqpConnectionManager.connect([url], { connectionOptions: { noDelay: flags.noDelay } })
  await manager.connect()
  return manager
}

/** rabbitmq-client: noDelay is a connection option. */
export async function rabbitConnect(): Promise<RabbitConnection> {
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
export function cloudConnect(): Promise<AMQPSession> {
  return AMQPSession.connect(url, { tlsOptions: { noDelay: flags.noDelay } as object })
}

/** A peer's confirmed send to one queue, as a promise, and how to close what it opened. */
export interface PromiseSender {
  send: () => Promise<unknown>
  close: () => Promise<void>
}

/**
 * The peers whose publish returns a promise that settles on the confirm, each opened the way its
 * docs show, with the same flags. S2 awaits one send at a time; S3 keeps a window of them.
 */
export const promiseSenders: Record<string, (queue: string, body: Buffer) => Promise<PromiseSender>> = {
  async 'rabbitmq-client'(queue, body) {
    const rabbit = await rabbitConnect()
    const pub = rabbit.createPublisher({ confirm: true })
    const envelope = { routingKey: queue, durable: flags.persistent, mandatory: flags.mandatory }
    return {
      send: () => pub.send(envelope, body),
      close: async () => {
        await pub.close()
        await rabbit.close()
      },
    }
  },
  async '@cloudamqp/amqp-client'(queue, body) {
    const session = await cloudConnect()
    const q = await session.queue(queue, { durable: true })
    const options = { deliveryMode: flags.persistent ? 2 : 1, mandatory: flags.mandatory }
    return { send: () => q.publish(body, options), close: () => session.stop() }
  },
  async 'amqp-connection-manager'(queue, body) {
    const manager = await acmConnect()
    const wrapper = manager.createChannel({ confirm: true })
    await wrapper.waitForConnect()
    const options = { persistent: flags.persistent, mandatory: flags.mandatory }
    return {
      send: () => wrapper.sendToQueue(queue, body, options),
      close: async () => {
        await wrapper.close()
        await manager.close()
      },
    }
  },
}
