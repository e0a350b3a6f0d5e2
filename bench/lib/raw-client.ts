// S0's minimal AMQP 0-9-1 client, written for the benchmark from the 0-9-1 spec: a plain socket,
// the handshake (PLAIN auth, heartbeats off), one channel, queue declare/delete, confirm.select,
// and publishes whose method + header + body frames are encoded once and written in batches (one
// Buffer per batch). It reads only what it needs: method frames (acks, nacks, returns, closes,
// replies); header and body frames (of returned messages) are skipped. It measures the broker's
// ceiling on this machine; it is no client for anything else.
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'

const FRAME_METHOD = 1
const FRAME_HEADER = 2
const FRAME_BODY = 3
const FRAME_END = 0xce
/** class-id << 16 | method-id, for the methods this client sends or reads. */
const m = (cls: number, mth: number) => (cls << 16) | mth
const START = m(10, 10)
const TUNE = m(10, 30)
const OPEN_OK = m(10, 41)
const CONN_CLOSE = m(10, 50)
const CONN_CLOSE_OK = m(10, 51)
const CH_OPEN_OK = m(20, 11)
const CH_CLOSE = m(20, 40)
const CH_CLOSE_OK = m(20, 41)
const DECLARE_OK = m(50, 11)
const DELETE_OK = m(50, 41)
const QOS_OK = m(60, 11)
const RETURN = m(60, 50)
const ACK = m(60, 80)
const NACK = m(60, 120)
const SELECT_OK = m(85, 11)

/** Encodes AMQP fields into a growing byte array. */
class Writer {
  readonly #bytes: number[] = []
  octet(v: number): this {
    this.#bytes.push(v & 0xff)
    return this
  }
  short(v: number): this {
    return this.octet(v >> 8).octet(v)
  }
  long(v: number): this {
    return this.short(v >>> 16).short(v & 0xffff)
  }
  longlong(v: number): this {
    return this.long(Math.floor(v / 2 ** 32)).long(v >>> 0)
  }
  shortstr(s: string): this {
    const b = Buffer.from(s)
    this.octet(b.length)
    for (const x of b) this.octet(x)
    return this
  }
  longstr(s: string | Buffer): this {
    const b = Buffer.from(s)
    this.long(b.length)
    for (const x of b) this.octet(x)
    return this
  }
  /** A field table of string values only (all this client sends). */
  table(t: Record<string, string>): this {
    const inner = new Writer()
    for (const [k, v] of Object.entries(t)) inner.shortstr(k).octet(0x53).longstr(v) // 'S'
    return this.longstr(inner.bytes())
  }
  bytes(): Buffer {
    return Buffer.from(this.#bytes)
  }
}

function frame(type: number, channel: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(7)
  head.writeUInt8(type, 0)
  head.writeUInt16BE(channel, 1)
  head.writeUInt32BE(payload.length, 3)
  return Buffer.concat([head, payload, Buffer.from([FRAME_END])])
}

function method(channel: number, id: number, args: (w: Writer) => Writer = (w) => w): Buffer {
  return frame(FRAME_METHOD, channel, args(new Writer().short(id >>> 16).short(id & 0xffff)).bytes())
}

/** Reads the values of a field table this client needs (strings, nested tables, booleans, ints). */
function readTable(buf: Buffer): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  let i = 0
  while (i < buf.length) {
    const key = buf.toString('utf8', i + 1, i + 1 + (buf[i] as number))
    i += 1 + (buf[i] as number)
    const type = String.fromCharCode(buf[i++] as number)
    if (type === 'S' || type === 'F') {
      const len = buf.readUInt32BE(i)
      const raw = buf.subarray(i + 4, i + 4 + len)
      out[key] = type === 'S' ? raw.toString() : readTable(raw)
      i += 4 + len
    } else if (type === 't') out[key] = buf[i++] === 1
    else if (type === 'I') {
      out[key] = buf.readInt32BE(i)
      i += 4
    } else if (type === 'l' || type === 'T') {
      out[key] = Number(buf.readBigInt64BE(i))
      i += 8
    } else if (type === 'V') out[key] = null
    else throw new Error(`raw client: field type '${type}' not handled`)
  }
  return out
}

export interface RawPublishOptions {
  persistent: boolean
  mandatory: boolean
  /** The content-type property (the JSON variant's `application/json`). */
  contentType?: string
}

/** What the raw client counts; `onConfirm(latencyMs)` is called per confirmed message. */
export interface RawCounts {
  published: number
  acked: number
  nacked: number
  returned: number
}

export class RawClient {
  readonly #socket: Socket
  #buffer: Buffer = Buffer.alloc(0)
  #replies: { id: number; resolve: (args: Buffer) => void; reject: (err: Error) => void }[] = []
  #error: Error | undefined
  #frameMax = 131072
  serverProperties: Record<string, unknown> = {}
  readonly counts: RawCounts = { published: 0, acked: 0, nacked: 0, returned: 0 }
  /** Confirms: tags at or below `#floor` are settled; `#single` holds tags settled one by one above it. */
  #floor = 0
  #single = new Set<number>()
  #sentAt = new Float64Array(1 << 15)
  #confirmWaiter: (() => void) | undefined
  onConfirm: ((latencyMs: number) => void) | undefined

  private constructor(socket: Socket) {
    this.#socket = socket
    socket.on('data', (chunk: Buffer) => this.#read(chunk))
    socket.on('error', (err) => this.#fail(err))
    socket.on('close', () => this.#fail(new Error('raw client: socket closed')))
  }

  /** Connects, authenticates (PLAIN), tunes (heartbeats off) and opens channel 1. */
  static async connect(url: string): Promise<RawClient> {
    const u = new URL(url)
    const socket = connect({ host: u.hostname, port: Number(u.port || 5672), noDelay: true })
    await once(socket, 'connect')
    const client = new RawClient(socket)
    const start = client.#expect(START)
    socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1])) // "AMQP" 0 0-9-1
    const startArgs = await start
    client.serverProperties = readTable(startArgs.subarray(6, 6 + startArgs.readUInt32BE(2)))
    const tune = client.#expect(TUNE)
    const user = decodeURIComponent(u.username || 'guest')
    const pass = decodeURIComponent(u.password || 'guest')
    socket.write(
      method(0, m(10, 11), (w) =>
        w
          .table({ connection_name: 'bench-raw', product: 'lapinmq-bench-raw' })
          .shortstr('PLAIN')
          .longstr(`\0${user}\0${pass}`)
          .shortstr('en_US'),
      ),
    )
    const t = await tune
    const channelMax = t.readUInt16BE(0)
    client.#frameMax = t.readUInt32BE(2) || client.#frameMax
    socket.write(method(0, m(10, 31), (w) => w.short(channelMax).long(client.#frameMax).short(0)))
    const vhost = decodeURIComponent(u.pathname.slice(1)) || '/'
    await client.#call(
      method(0, m(10, 40), (w) => w.shortstr(vhost).shortstr('').octet(0)),
      OPEN_OK,
    )
    await client.#call(
      method(1, m(20, 10), (w) => w.shortstr('')),
      CH_OPEN_OK,
    )
    return client
  }

  get version(): string {
    return String(this.serverProperties.version ?? 'unknown')
  }

  async confirmSelect(): Promise<void> {
    await this.#call(
      method(1, m(85, 10), (w) => w.octet(0)),
      SELECT_OK,
    )
  }

  /** Declares a queue; resolves to its message count. */
  async declare(queue: string, options: { durable: boolean; passive?: boolean }): Promise<number> {
    const bits = (options.passive ? 1 : 0) | (options.durable ? 2 : 0)
    const args = await this.#call(
      method(1, m(50, 10), (w) => w.short(0).shortstr(queue).octet(bits).table({})),
      DECLARE_OK,
    )
    return args.readUInt32BE(1 + (args[0] as number))
  }

  async deleteQueue(queue: string): Promise<void> {
    await this.#call(
      method(1, m(50, 40), (w) => w.short(0).shortstr(queue).octet(0)),
      DELETE_OK,
    )
  }

  /** One round trip of a cheap synchronous method (basic.qos), in ms. */
  async ping(): Promise<number> {
    const t0 = performance.now()
    await this.#call(
      method(1, m(60, 10), (w) => w.long(0).short(0).octet(0)),
      QOS_OK,
    )
    return performance.now() - t0
  }

  /** The frames of one publish to the default exchange, encoded once. */
  encodePublish(queue: string, body: Buffer, options: RawPublishOptions): Buffer {
    const publish = method(1, m(60, 40), (w) =>
      w
        .short(0)
        .shortstr('')
        .shortstr(queue)
        .octet(options.mandatory ? 1 : 0),
    )
    const props = new Writer().short(60).short(0).longlong(body.length)
    // Property flags, then the properties present in flag order: content-type (bit 15), delivery-mode (bit 12).
    const { contentType } = options
    props.short((contentType === undefined ? 0 : 0x8000) | (options.persistent ? 0x1000 : 0))
    if (contentType !== undefined) props.shortstr(contentType)
    if (options.persistent) props.octet(2) // 2 = persistent
    const frames = [publish, frame(FRAME_HEADER, 1, props.bytes())]
    const chunk = this.#frameMax - 8
    for (let i = 0; i < body.length || i === 0; i += chunk) {
      frames.push(frame(FRAME_BODY, 1, body.subarray(i, i + chunk)))
      if (body.length === 0) break
    }
    return Buffer.concat(frames)
  }

  /**
   * Writes `count` copies of an encoded publish as one write; resolves at once while the socket
   * takes more, or on its 'drain'. `batch` must hold at least `count` copies back to back.
   */
  write(batch: Buffer, one: number, count: number): Promise<void> | undefined {
    if (this.#error) return Promise.reject(this.#error)
    const now = performance.now()
    for (let i = 0; i < count; i++) this.#sentAt[(this.counts.published + 1 + i) & 0x7fff] = now
    this.counts.published += count
    if (this.#socket.write(batch.subarray(0, one * count))) return undefined
    return once(this.#socket, 'drain').then(() => undefined)
  }

  get unconfirmed(): number {
    return this.counts.published - this.counts.acked - this.counts.nacked
  }

  /** Resolves when at most `limit` published messages are unconfirmed. */
  async waitForConfirms(limit: number): Promise<void> {
    while (this.unconfirmed > limit) {
      if (this.#error) throw this.#error
      await new Promise<void>((resolve) => (this.#confirmWaiter = resolve))
    }
  }

  /** Closes the channel and the connection (each waits for the broker's close-ok). */
  async close(): Promise<void> {
    if (!this.#error) {
      await this.#call(
        method(1, CH_CLOSE, (w) => w.short(200).shortstr('bye').short(0).short(0)),
        CH_CLOSE_OK,
      )
      await this.#call(
        method(0, CONN_CLOSE, (w) => w.short(200).shortstr('bye').short(0).short(0)),
        CONN_CLOSE_OK,
      )
    }
    this.#socket.destroy()
  }

  #expect(id: number): Promise<Buffer> {
    return new Promise((resolve, reject) => this.#replies.push({ id, resolve, reject }))
  }

  #call(out: Buffer, reply: number): Promise<Buffer> {
    if (this.#error) return Promise.reject(this.#error)
    const p = this.#expect(reply)
    this.#socket.write(out)
    return p
  }

  #fail(err: Error): void {
    this.#error ??= err
    for (const r of this.#replies.splice(0)) r.reject(err)
    this.#confirmWaiter?.()
  }

  #read(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk])
    let i = 0
    while (this.#buffer.length - i >= 8) {
      const size = this.#buffer.readUInt32BE(i + 3)
      if (this.#buffer.length - i < size + 8) break
      if (this.#buffer[i + 7 + size] !== FRAME_END) {
        this.#fail(new Error('raw client: bad frame end'))
        return
      }
      if (this.#buffer[i] === FRAME_METHOD) this.#method(this.#buffer.subarray(i + 7, i + 7 + size))
      i += size + 8
    }
    this.#buffer = this.#buffer.subarray(i)
  }

  #method(payload: Buffer): void {
    const id = payload.readUInt32BE(0)
    const args = payload.subarray(4)
    if (id === ACK || id === NACK) {
      this.#settle(Number(args.readBigUInt64BE(0)), (args[8] as number) & 1, id === NACK)
    } else if (id === RETURN) {
      this.counts.returned++
    } else if (id === CONN_CLOSE || id === CH_CLOSE) {
      const text = args.toString('utf8', 3, 3 + (args[2] as number))
      this.#socket.write(method(id === CONN_CLOSE ? 0 : 1, id + 1)) // close-ok
      this.#fail(new Error(`raw client: broker closed: ${args.readUInt16BE(0)} ${text}`))
    } else if (this.#replies[0]?.id === id) {
      this.#replies.shift()?.resolve(args)
    } else {
      this.#fail(new Error(`raw client: unexpected method ${id >>> 16}.${id & 0xffff}`))
    }
  }

  /** A method, not a closure per frame: tsx would wrap each closure in a naming call. */
  #confirmed(tag: number, now: number): void {
    this.onConfirm?.(now - (this.#sentAt[tag & 0x7fff] as number))
  }

  /** An ack or nack of `tag`, or of every tag up to it when `multiple`. */
  #settle(tag: number, multiple: number, nack: boolean): void {
    const now = performance.now()
    let settled = 0
    if (multiple) {
      for (let t = this.#floor + 1; t <= tag; t++) {
        if (this.#single.delete(t)) continue
        settled++
        this.#confirmed(t, now)
      }
      this.#floor = Math.max(this.#floor, tag)
    } else if (tag > this.#floor && !this.#single.has(tag)) {
      this.#single.add(tag)
      settled++
      this.#confirmed(tag, now)
      while (this.#single.delete(this.#floor + 1)) this.#floor++
    }
    if (nack) this.counts.nacked += settled
    else this.counts.acked += settled
    const w = this.#confirmWaiter
    this.#confirmWaiter = undefined
    w?.()
  }
}
