// Parsing of rabbitmqctl listings for PrivateBroker. JSON (`--formatter json`) where the values are
// needed as such; the tab-separated table (`-q`) where pids must be compared or passed back to
// rabbitmqctl, because only the table prints them as `<node.n.n.n>` (JSON prints `#PID<n.n.n>`,
// numbered by the CLI's own Erlang node, which differs from one rabbitmqctl run to the next).

/** A client connection as the broker sees it. */
export interface BrokerConnection {
  /** The client-provided `connection_name` ('' when the client gave none). */
  name: string
  /** The broker's name for it, `127.0.0.1:<client port> -> 127.0.0.1:<broker port>`. */
  address: string
  user: string
  state: string
  channels: number
  peerPort: number
}

/** A channel, with its connection's client-provided name. */
export interface BrokerChannel {
  connectionName: string
  connectionAddress: string
  number: number
  consumers: number
  unacked: number
  unconfirmed: number
  prefetch: number
  confirm: boolean
}

/** A consumer, with its channel number and connection's client-provided name. */
export interface BrokerConsumer {
  queue: string
  consumerTag: string
  ackRequired: boolean
  prefetch: number
  active: boolean
  connectionName: string
  channelNumber: number
}

/** A queue's message counts. */
export interface QueueMessages {
  ready: number
  unacked: number
}

function jsonRows<T>(out: string): T[] {
  return out.trim() === '' ? [] : (JSON.parse(out) as T[])
}

/**
 * A `-q` table: a header line of column names, then tab-separated rows. Read by name, because some
 * commands (list_consumers) print their columns in their own order, not the order asked for.
 */
function tableRows(out: string): Record<string, string>[] {
  const [header, ...lines] = out.split('\n').filter((line) => line.trim() !== '')
  const columns = header?.split('\t') ?? []
  return lines.map((line) => {
    const cells = line.split('\t')
    return Object.fromEntries(columns.map((column, i) => [column, cells[i] ?? '']))
  })
}

/** `connection_name` from client_properties, rendered as [[key, type, value], ...] or as an object. */
export function connectionName(props: unknown): string {
  if (Array.isArray(props)) {
    const entry = props.find((p) => Array.isArray(p) && p[0] === 'connection_name') as unknown[] | undefined
    const value = entry?.[entry.length - 1]
    return typeof value === 'string' ? value : ''
  }
  const name = (props as Record<string, unknown> | null)?.connection_name
  return typeof name === 'string' ? name : ''
}

/** `list_connections name user state channels peer_port client_properties --formatter json`. */
export function parseConnections(json: string): BrokerConnection[] {
  type Row = {
    name: string
    user: string
    state: string
    channels: number
    peer_port: number
    client_properties: unknown
  }
  return jsonRows<Row>(json).map((r) => ({
    name: connectionName(r.client_properties),
    address: r.name,
    user: r.user,
    state: r.state,
    channels: r.channels,
    peerPort: r.peer_port,
  }))
}

/** `-q list_connections pid name`: the connection pid (for close_connection) by broker-side name. */
export function parsePidsByAddress(table: string): Map<string, string> {
  return new Map(tableRows(table).map((r) => [r.name ?? '', r.pid ?? '']))
}

/** A channel's name is `<connection address> (<channel number>)`. */
function channelAddress(channelName: string): string {
  return channelName.replace(/ \(\d+\)$/, '')
}

function namesByAddress(connections: readonly BrokerConnection[]): Map<string, string> {
  return new Map(connections.map((c) => [c.address, c.name]))
}

/** `list_channels name number consumer_count messages_unacknowledged messages_unconfirmed prefetch_count confirm --formatter json`. */
export function parseChannels(json: string, connections: readonly BrokerConnection[]): BrokerChannel[] {
  type Row = {
    name: string
    number: number
    consumer_count: number
    messages_unacknowledged: number
    messages_unconfirmed: number
    prefetch_count: number
    confirm: boolean
  }
  const names = namesByAddress(connections)
  return jsonRows<Row>(json).map((r) => {
    const address = channelAddress(r.name)
    return {
      connectionName: names.get(address) ?? '',
      connectionAddress: address,
      number: r.number,
      consumers: r.consumer_count,
      unacked: r.messages_unacknowledged,
      unconfirmed: r.messages_unconfirmed,
      prefetch: r.prefetch_count,
      confirm: r.confirm,
    }
  })
}

/**
 * `-q list_consumers channel_pid queue_name consumer_tag ack_required prefetch_count active`, joined
 * with `-q list_channels pid name number` and the connections.
 */
export function parseConsumers(
  consumersTable: string,
  channelsTable: string,
  connections: readonly BrokerConnection[],
): BrokerConsumer[] {
  const names = namesByAddress(connections)
  const channels = new Map(
    tableRows(channelsTable).map((r) => [
      r.pid ?? '',
      { connectionName: names.get(channelAddress(r.name ?? '')) ?? '', channelNumber: Number(r.number) },
    ]),
  )
  return tableRows(consumersTable).map((r) => {
    const channel = channels.get(r.channel_pid ?? '')
    return {
      queue: r.queue_name ?? '',
      consumerTag: r.consumer_tag ?? '',
      ackRequired: r.ack_required === 'true',
      prefetch: Number(r.prefetch_count),
      active: r.active === 'true',
      connectionName: channel?.connectionName ?? '',
      channelNumber: channel?.channelNumber ?? 0,
    }
  })
}
