// A connection pool: two connections used as one. Each publisher or consumer started on the pool
// gets its channel on the least-loaded connection and keeps it until it stops; RabbitMQ reads each
// connection in a process of its own. With `urls` of a cluster, the pool's connections start one
// per node. The pool's connections read RABBITMQ_URL like any connection.
import { ConnectionPool, Consumer, type Message, MessageStatus, Publisher, waitForSigterm } from 'lapinmq'

const queue = process.env.QUEUE ?? 'jobs'
const count = Number(process.env.COUNT ?? 10)

const pool = new ConnectionPool({ size: 2, name: 'jobs-app' }) // connections jobs-app#0 and jobs-app#1

let left = count
let allDone!: () => void
const finished = new Promise<void>((resolve) => {
  allDone = resolve
})

const consumer = new Consumer({
  queueName: queue,
  connection: pool,
  taskFunction: (message: Message) => {
    console.log(`did ${message.body}`)
    if (--left === 0) allDone()
    return MessageStatus.SUCCESS
  },
})
const publisher = new Publisher({ kind: 'async', connection: pool })
await consumer.start() // on jobs-app#0, the least loaded (a tie goes to the first)
await publisher.start() // on jobs-app#1
console.log(`publishers and consumers per connection: ${pool.loads.join(', ')}`)
await Promise.all(Array.from({ length: count }, (_, i) => publisher.sendMessageToQueue(queue, `job ${i}`)))
await Promise.race([finished, waitForSigterm()]) // every job done (or Ctrl-C)
await Promise.all([publisher.stop(), consumer.stop()])
await pool.close() // the pool's connections are the pool's to close
