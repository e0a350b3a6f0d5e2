// A real RabbitMQ cluster for the cluster tests: three PrivateBroker nodes on this machine (their own
// ports and data directories, one shared private Erlang cookie) joined into one cluster. Nothing
// done to it reaches the shared broker on 5672; every node is killed when the test process exits.
//
//   const cluster = await LocalCluster.start()
//   after(() => cluster.stop())
//   const connection = new Connection({ urls: cluster.urls, name: 'pub' })
//   const node = await cluster.nodeOfConnection('pub')   // the PrivateBroker it is on
//   await node.kill9(); await node.restart()              // crash, then rejoin from its data directory
//   const leader = await cluster.leaderOf('orders')      // a quorum queue's leader (a classic queue's home node)
import { randomBytes } from 'node:crypto'
import { after, before } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { PrivateBroker, type PrivateBrokerOptions } from './private-broker.ts'
import { connectionName } from './rabbitmqctl-output.ts'

export interface LocalClusterOptions {
  /** How many nodes. @default 3 */
  size?: number
  /** Extra rabbitmq.conf lines for every node. */
  config?: string
}

export class LocalCluster {
  readonly nodes: readonly PrivateBroker[]

  private constructor(nodes: PrivateBroker[]) {
    this.nodes = nodes
  }

  /** Starts the nodes (in parallel) and joins every other one to the first. */
  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const size = options.size ?? 3
    const shared: PrivateBrokerOptions = {
      cookie: randomBytes(24).toString('hex').toUpperCase(),
      // Partitions heal by themselves once a killed or frozen node is back.
      config: ['cluster_partition_handling = autoheal', options.config ?? ''].join('\n'),
    }
    const started = await Promise.allSettled(Array.from({ length: size }, () => PrivateBroker.start(shared)))
    const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed) {
      await Promise.all(nodes.map((n) => n.stop()))
      throw failed.reason
    }
    const cluster = new LocalCluster(nodes)
    try {
      const [first, ...others] = nodes as [PrivateBroker, ...PrivateBroker[]]
      for (const node of others) {
        await node.ctl('stop_app')
        await node.ctl('reset')
        await node.ctl('join_cluster', first.nodeName)
        await node.startApp()
      }
      await cluster.waitRunning(size)
    } catch (err) {
      await cluster.stop()
      throw err
    }
    return cluster
  }

  /** Every node's AMQP URL, in node order. */
  get urls(): string[] {
    return this.nodes.map((n) => n.url)
  }

  /** The node listening on `port`. */
  nodeByPort(port: number): PrivateBroker {
    const node = this.nodes.find((n) => n.port === port)
    if (!node) throw new Error(`LocalCluster: no node listens on ${port}`)
    return node
  }

  /** The node whose Erlang name is `nodeName`. */
  nodeByName(nodeName: string): PrivateBroker {
    const node = this.nodes.find((n) => n.nodeName === nodeName)
    if (!node) throw new Error(`LocalCluster: no node is named ${nodeName}`)
    return node
  }

  /** Runs `rabbitmqctl` on the first node that answers (killed, stopped or frozen ones are skipped). */
  async ctl(...args: string[]): Promise<string> {
    let last: unknown
    for (const node of this.nodes) {
      try {
        return await node.ctl('-t', '10', ...args)
      } catch (err) {
        last = err
      }
    }
    throw last ?? new Error('LocalCluster: no node answers')
  }

  /** The nodes running the RabbitMQ application, as rabbitmqctl on a live node sees them. */
  async runningNodes(): Promise<string[]> {
    const status = JSON.parse(await this.ctl('-q', 'cluster_status', '--formatter', 'json')) as {
      running_nodes?: string[]
    }
    return status.running_nodes ?? []
  }

  /** Waits until `count` nodes run the application (after a restart, a node takes a moment to rejoin). */
  async waitRunning(count = this.nodes.length, timeoutMs = 60_000): Promise<void> {
    const end = Date.now() + timeoutMs
    for (;;) {
      const running = await this.runningNodes().catch(() => [])
      if (running.length >= count) return
      if (Date.now() > end) throw new Error(`LocalCluster: ${running.length} of ${count} nodes running`)
      await sleep(200)
    }
  }

  /**
   * Which node each client connection named `name` is on (by the AMQP port it reached), for every
   * connection with that `connection_name`, cluster-wide.
   */
  async nodesOfConnections(name: string | RegExp): Promise<PrivateBroker[]> {
    const rows = JSON.parse(
      (await this.ctl('-q', 'list_connections', 'port', 'client_properties', '--formatter', 'json')) || '[]',
    ) as { port: number; client_properties: unknown }[]
    const matches = (n: string): boolean => (typeof name === 'string' ? n === name : name.test(n))
    return rows
      .filter((r) => matches(connectionName(r.client_properties)))
      .map((r) => this.nodeByPort(r.port))
  }

  /** The node the one connection named `name` is on; throws when there is none or several. */
  async nodeOfConnection(name: string): Promise<PrivateBroker> {
    const nodes = await this.nodesOfConnections(name)
    if (nodes.length !== 1) throw new Error(`LocalCluster: ${nodes.length} connections named '${name}'`)
    return nodes[0] as PrivateBroker
  }

  /** Waits until the one connection named `name` is on a node that `accept` takes; returns the node. */
  async waitConnectionOn(
    name: string,
    accept: (node: PrivateBroker) => boolean = () => true,
    timeoutMs = 30_000,
  ): Promise<PrivateBroker> {
    const end = Date.now() + timeoutMs
    for (;;) {
      const nodes = await this.nodesOfConnections(name).catch(() => [])
      if (nodes.length === 1 && accept(nodes[0] as PrivateBroker)) return nodes[0] as PrivateBroker
      if (Date.now() > end) {
        throw new Error(
          `LocalCluster: connection '${name}' on ${nodes.map((n) => n.port).join(', ') || 'no node'}`,
        )
      }
      await sleep(200)
    }
  }

  /** A quorum queue's leader, or a classic queue's home node (default vhost). */
  async leaderOf(queue: string): Promise<PrivateBroker> {
    // The table format shows a pid with its node (<rabbit@host.1.2.3>), the JSON one does not.
    const table = await this.ctl('-q', '--no-table-headers', 'list_queues', 'name', 'type', 'leader', 'pid')
    const row = table
      .split('\n')
      .map((line) => line.split('\t'))
      .find((cells) => cells[0] === queue)
    if (!row) throw new Error(`LocalCluster: no queue '${queue}'`)
    const [, type, leader, pid] = row
    const nodeName = type === 'quorum' ? leader : /<([^.]+@[^.]+)\./.exec(pid ?? '')?.[1]
    if (!nodeName) throw new Error(`LocalCluster: no leader known for '${queue}' (${row.join(' ')})`)
    return this.nodeByName(nodeName)
  }

  /** Ready and unacknowledged messages of a queue, as a live node sees them. */
  async queueMessages(name: string): Promise<{ ready: number; unacked: number }> {
    const rows = JSON.parse(
      (await this.ctl(
        '-q',
        'list_queues',
        ...['name', 'messages_ready', 'messages_unacknowledged', '--formatter', 'json'],
      )) || '[]',
    ) as { name: string; messages_ready: number; messages_unacknowledged: number }[]
    const row = rows.find((r) => r.name === name)
    if (!row) throw new Error(`LocalCluster: no queue '${name}'`)
    return { ready: row.messages_ready, unacked: row.messages_unacknowledged }
  }

  /** Consumers of a queue, cluster-wide. */
  async consumerCount(queue: string): Promise<number> {
    const out = await this.ctl('-q', 'list_consumers', 'queue_name', '--formatter', 'json')
    return (JSON.parse(out || '[]') as { queue_name: string }[]).filter((r) => r.queue_name === queue).length
  }

  /** Stops every node and removes their data directories. Idempotent. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()))
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }
}

/**
 * Starts a LocalCluster before the calling file's tests and stops it after them (one cluster per
 * file: it takes about 30 s to form). Read `.cluster` in a test; `.startMs` is how long it took.
 */
export function useLocalCluster(options: LocalClusterOptions = {}): {
  readonly cluster: LocalCluster
  readonly startMs: number
} {
  let started: LocalCluster | undefined
  let startMs = 0
  before(async () => {
    const t0 = performance.now()
    started = await LocalCluster.start(options)
    startMs = Math.round(performance.now() - t0)
    process.stderr.write(`LocalCluster: ${started.nodes.length} nodes clustered in ${startMs} ms\n`)
  })
  after(async () => {
    await started?.stop()
  })
  return {
    get cluster(): LocalCluster {
      if (started === undefined) throw new Error('the local cluster is not started (used outside a test?)')
      return started
    },
    get startMs(): number {
      return startMs
    },
  }
}
