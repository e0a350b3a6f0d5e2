// Readiness and liveness probes over HTTP, beside a consumer: /readyz answers 200 while the
// connection can do its work (open, not blocked, the broker heard from lately), /livez 200 unless
// the connection is closed for good; both answer with the connection's health as JSON.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Connection, Consumer, type Message, MessageStatus, waitForSigterm } from 'lapinmq'

const queue = process.env.QUEUE ?? 'jobs'
const port = Number(process.env.PORT ?? 8080)

const connection = new Connection({ name: 'health-example' })
const consumer = new Consumer({
  queueName: queue,
  connection,
  taskFunction: (message: Message) => {
    console.log(`did ${message.body}`)
    return MessageStatus.SUCCESS
  },
})

const server = createServer((req, res) => {
  const health = connection.health()
  const ok =
    req.url === '/readyz' ? health.ready : req.url === '/livez' ? health.state !== 'closed' : undefined
  res.writeHead(ok === undefined ? 404 : ok ? 200 : 503, { 'content-type': 'application/json' })
  res.end(JSON.stringify(health))
})
server.listen(port, () => {
  console.log(`probes on http://127.0.0.1:${(server.address() as AddressInfo).port}`)
})

await consumer.start()
await waitForSigterm()
await consumer.stop()
await connection.close()
server.close()
