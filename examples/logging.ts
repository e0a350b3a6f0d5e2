// lapinmq's log lines through a small JSON-lines logger with child(), written the way pino writes
// them (pino itself fits as it is: `logger: pino()`). The consumer logs through a child bound to
// `{ lapinmq: 'consumer', queue }`. A normal start, run and stop logs nothing above info; the one
// task that asks to be retried later shows as a debug line.
import { Connection, Consumer, type Logger, type Message, MessageStatus, Publisher } from 'lapinmq'

const queue = process.env.QUEUE ?? 'jobs'
const count = Number(process.env.COUNT ?? 5)

type Fields = Record<string, unknown>
type ChildLogger = Logger & { child(bindings: Fields): ChildLogger }

function jsonLogger(bindings: Fields = {}): ChildLogger {
  const line = (level: string) => (fields: object, msg?: string) => {
    console.log(JSON.stringify({ level, time: Date.now(), ...bindings, ...fields, msg }))
  }
  return {
    debug: line('debug'),
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
    child: (more) => jsonLogger({ ...bindings, ...more }),
  }
}

const connection = new Connection({ name: 'logging-example', logger: jsonLogger({ app: 'billing' }) })
let retried = false
let left = count
let allDone!: () => void
const finished = new Promise<void>((resolve) => {
  allDone = resolve
})

const consumer = new Consumer({
  queueName: queue,
  connection,
  taskFunction: (message: Message) => {
    if (!retried) {
      retried = true
      return MessageStatus.FAIL_RETRY_LATER // requeued after a short backoff
    }
    console.log(`did ${message.body}`)
    if (--left === 0) allDone()
    return MessageStatus.SUCCESS
  },
})
const publisher = new Publisher({ kind: 'sync', connection })
await consumer.start()
await publisher.start()
for (let i = 0; i < count; i++) await publisher.sendMessageToQueue(queue, `job ${i}`)
await finished
await publisher.stop()
await consumer.stop()
await connection.close()
