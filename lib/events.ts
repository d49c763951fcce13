// Recent events: the last lines the daemon logged, kept in memory for the operator console.

export interface DaemonEvent {
  /** ISO time the line was logged */
  time: string;
  line: string;
}

export class EventLog {
  private readonly lines: DaemonEvent[] = [];

  constructor(private readonly size = 200, private readonly clock: () => number = Date.now) {}

  add(line: string): void {
    this.lines.push({ time: new Date(this.clock()).toISOString(), line });
    if (this.lines.length > this.size) this.lines.splice(0, this.lines.length - this.size);
  }

  /** The newest `n` events, newest first. */
  recent(n = 50): DaemonEvent[] {
    return this.lines.slice(-n).reverse();
  }
}
