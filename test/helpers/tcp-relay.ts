import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A fault-injecting TCP relay on 127.0.0.1 for partition tests: forwards
 * every connection to 127.0.0.1:`target` until cut(), which drops every
 * open connection and refuses new ones (they are closed at once) until
 * heal(). The target may be set after start (a daemon whose config names
 * the relay's URL learns its own port later); until then connections are
 * refused.
 */
export class TcpRelay {
  private readonly sockets = new Set<Socket>();
  private cutOff = false;
  target: number | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<TcpRelay> {
    const holder: { relay?: TcpRelay } = {};
    const server = createServer((client) => {
      const relay = holder.relay;
      if (relay === undefined || relay.cutOff || relay.target === undefined) {
        client.destroy();
        return;
      }
      const upstream = connect(relay.target, '127.0.0.1');
      const pair = [client, upstream];
      for (const s of pair) {
        relay.sockets.add(s);
        s.on('close', () => relay.sockets.delete(s));
        s.on('error', () => pair.forEach((x) => x.destroy()));
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    holder.relay = new TcpRelay(server, (server.address() as AddressInfo).port);
    return holder.relay;
  }

  /** Drops every connection and refuses new ones. */
  cut(): void {
    this.cutOff = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  heal(): void {
    this.cutOff = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
