// Admits work up to a total (--count): a task enters only while the tasks running plus those done
// stay below the limit, so concurrent tasks never handle more than --count messages between them.
export class Gate {
  readonly #limit: number
  #active = 0
  #done = 0
  #closed = false
  #waiters: (() => void)[] = []

  constructor(limit: number) {
    this.#limit = limit
  }

  /** Tasks inside now. */
  get active(): number {
    return this.#active
  }

  /** Tasks that left with success. */
  get done(): number {
    return this.#done
  }

  /** Enters at once if there is room; false when full or closed. */
  tryEnter(): boolean {
    if (this.#closed || this.#active + this.#done >= this.#limit) return false
    this.#active++
    return true
  }

  /** Enters when there is room (a running task may fail and free it); false once closed. */
  async enter(): Promise<boolean> {
    while (!this.tryEnter()) {
      if (this.#closed) return false
      await new Promise<void>((resolve) => this.#waiters.push(resolve))
    }
    return true
  }

  /** Leaves; a success counts towards the limit, a failure frees the room for another try. */
  leave(succeeded: boolean): void {
    this.#active--
    if (succeeded) this.#done++
    this.#wake()
  }

  /** Admits nobody any more; waiting tasks get false. */
  close(): void {
    this.#closed = true
    this.#wake()
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake()
  }
}
