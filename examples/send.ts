// Sends COUNT messages to a queue with a sync publisher: each send waits for the broker's confirm.
import { Publisher } from 'lapinmq'

const queue = process.env.QUEUE ?? 'task_queue'
const count = Number(process.env.COUNT ?? 10)

const publisher = new Publisher({ kind: 'sync' })
await publisher.start()
for (let i = 0; i < count; i++) {
  const body = `message ${i}`
  await publisher.sendMessageToQueue(queue, body)
  console.log(`sent: ${body}`)
}
await publisher.stop()
