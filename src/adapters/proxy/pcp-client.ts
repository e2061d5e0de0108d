/**
 * A native client for Pgpool-II's PCP protocol (4.3), so the bot never shells out to the pcp_* binaries,
 * which exit 0 even when the server answers ERROR. Wire format (pgpool2 V4_3_5 src/libs/pcp/pcp.c):
 * a type byte, an int32 big-endian length that includes itself, then the payload (mostly NUL-terminated
 * strings). Authentication is md5 only: md5hex(md5hex(md5hex(password) + user) + salt), no "md5" prefix.
 * PCP has no TLS: keep it on localhost or a private network.
 */
import { createHash } from 'node:crypto';
import { Socket } from 'node:net';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Secret } from '../../secret.js';

export interface PcpConnectionOptions {
  host: string;
  port: number;
  user: string;
  password: Secret;
  /** Limit for connecting and for each command (milliseconds). */
  timeoutMs?: number;
}

/** Node status as PCP reports it: 0 init, 1 up (waiting for connections), 2 up, 3 down. */
export const NodeStatus = { Init: 0, Waiting: 1, Up: 2, Down: 3 } as const;
/** Node role: 0 main (raw/other modes), 1 replica, 2 primary, 3 standby. */
export const NodeRole = { Main: 0, Replica: 1, Primary: 2, Standby: 3 } as const;

export interface PcpNodeInfo {
  id: number;
  host: string;
  port: number;
  status: number;
  /** True when status is 1 or 2 (pgpool will route to it). */
  up: boolean;
  role: number;
  weight: number;
  pgStatus: string;
  pgRole: string;
  lastStatusChange: string;
}

interface Packet {
  type: string;
  payload: Buffer;
}

const MAX_PACKET = 64 * 1024 * 1024;

export class PcpError extends CodedError {
  readonly severity: string;
  constructor(message: string, severity: string, details: Record<string, string> = {}) {
    super(ErrorCode.ProxyAdminFailed, `Pgpool PCP: ${message}`, { details: { severity, ...details } });
    this.name = 'PcpError';
    this.severity = severity;
  }
}

const md5hex = (input: string | Buffer) => createHash('md5').update(input).digest('hex');

/** Splits a payload into its NUL-terminated strings (a trailing partial string is kept too). */
function cstrings(payload: Buffer): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < payload.length; i++) {
    if (payload[i] === 0) {
      out.push(payload.subarray(start, i).toString('utf8'));
      start = i + 1;
    }
  }
  if (start < payload.length) out.push(payload.subarray(start).toString('utf8'));
  return out;
}

/** Parses an 'E'/'N' payload: repeated (field byte, cstring), ended by a NUL. */
function errorFields(payload: Buffer): Record<string, string> {
  const fields: Record<string, string> = {};
  let i = 0;
  while (i < payload.length && payload[i] !== 0) {
    const code = String.fromCharCode(payload[i] ?? 0);
    const end = payload.indexOf(0, i + 1);
    const stop = end === -1 ? payload.length : end;
    fields[code] = payload.subarray(i + 1, stop).toString('utf8');
    i = stop + 1;
  }
  return fields;
}

export class PcpClient {
  readonly #socket: Socket;
  readonly #timeoutMs: number;
  #buffer: Buffer = Buffer.alloc(0);
  #waiter: (() => void) | undefined;
  #closed: Error | undefined;

  private constructor(socket: Socket, timeoutMs: number) {
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
      this.#wake();
    });
    socket.on('error', (error) => {
      this.#closed ??= error;
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed ??= new Error('connection closed by pgpool');
      this.#wake();
    });
  }

  /** Connects and authenticates; the caller closes the client (PCP forks one worker per connection). */
  static async connect(options: PcpConnectionOptions): Promise<PcpClient> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const socket = new Socket();
    socket.setNoDelay(true);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          socket.destroy();
          reject(new Error(`connect timed out after ${timeoutMs} ms`));
        }, timeoutMs);
        socket.once('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
        socket.connect(options.port, options.host, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    } catch (cause) {
      throw new CodedError(
        ErrorCode.ProxyAdminFailed,
        `Cannot reach Pgpool PCP at ${options.host}:${options.port}: ${(cause as Error).message}`,
        { cause, details: { host: options.host, port: options.port } },
      );
    }
    const client = new PcpClient(socket, timeoutMs);
    try {
      await client.#authenticate(options.user, options.password);
    } catch (error) {
      client.destroy();
      throw error;
    }
    return client;
  }

  async #authenticate(user: string, password: Secret): Promise<void> {
    this.#send('M');
    const salt = await this.#expect('m');
    const hashed = md5hex(md5hex(password.reveal()) + user);
    const response = md5hex(Buffer.concat([Buffer.from(hashed, 'utf8'), salt.payload.subarray(0, 4)]));
    this.#send('R', Buffer.from(`${user}\0${response}\0`, 'utf8'));
    const ok = await this.#expect('r');
    if (!cstrings(ok.payload)[0]?.startsWith('AuthenticationOK')) {
      throw new PcpError(`authentication failed for user "${user}"`, 'FATAL');
    }
  }

  /** Number of configured backend nodes. */
  async nodeCount(): Promise<number> {
    this.#send('L');
    const reply = await this.#expect('l');
    return Number(cstrings(reply.payload)[1]);
  }

  /** One node's info (`pcp_node_info -n id`). */
  async nodeInfo(id: number): Promise<PcpNodeInfo> {
    const [node] = await this.#nodeInfo(id);
    if (!node) throw new PcpError(`no node info returned for node ${id}`, 'ERROR');
    return node;
  }

  /** Every node's info (`pcp_node_info -a`). */
  allNodeInfo(): Promise<PcpNodeInfo[]> {
    return this.#nodeInfo(-1);
  }

  async #nodeInfo(id: number): Promise<PcpNodeInfo[]> {
    this.#send('I', Buffer.from(`${id}\0`));
    const nodes: PcpNodeInfo[] = [];
    for (;;) {
      const packet = await this.#expect('i');
      const fields = cstrings(packet.payload);
      const head = fields[0];
      if (head === 'CommandComplete') return nodes;
      if (head !== 'NodeInfo') continue; // ArraySize
      const [, host = '', port = '', status = '', , pgStatus = '', weight = '', role = '', pgRole = ''] = fields;
      const last = fields.at(-1) ?? '';
      const statusNumber = Number(status);
      nodes.push({
        id: id === -1 ? nodes.length : id,
        host,
        port: Number(port),
        status: statusNumber,
        up: statusNumber === NodeStatus.Waiting || statusNumber === NodeStatus.Up,
        role: Number(role),
        weight: Number(weight) / 2147483647,
        pgStatus,
        pgRole,
        lastStatusChange: last,
      });
    }
  }

  /** Detaches a node (`pcp_detach_node`). The reply comes before failover finishes: poll nodeInfo. */
  async detachNode(id: number, graceful = false): Promise<void> {
    this.#send(graceful ? 'd' : 'D', Buffer.from(`${id}\0`));
    await this.#expect('d');
  }

  /** Attaches a node (`pcp_attach_node`); asynchronous like detach. */
  async attachNode(id: number): Promise<void> {
    this.#send('C', Buffer.from(`${id}\0`));
    await this.#expect('c');
  }

  /** Promotes a node in pgpool's view (streaming-replication mode only); `switchover` also detaches the primary. */
  async promoteNode(id: number, options: { graceful?: boolean; switchover?: boolean } = {}): Promise<void> {
    const payload = Buffer.concat([Buffer.from(`${id} \0`), Buffer.from(options.switchover ? 's' : 'n')]);
    this.#send(options.graceful ? 'j' : 'J', payload);
    await this.#expect('d');
  }

  /** Re-reads pgpool.conf (`pcp_reload_config`), locally or cluster-wide through the watchdog. */
  async reloadConfig(scope: 'local' | 'cluster' = 'local'): Promise<void> {
    this.#send('Z', Buffer.from(scope === 'local' ? 'l' : 'c'));
    await this.#expect('z');
  }

  /** Every configuration parameter pgpool runs with (`pcp_pool_status`), by name. */
  async poolStatus(): Promise<Map<string, string>> {
    this.#send('B');
    const out = new Map<string, string>();
    for (;;) {
      const packet = await this.#expect('b');
      const fields = cstrings(packet.payload);
      if (fields[0] === 'CommandComplete') return out;
      if (fields[0] === 'ProcessConfig') out.set(fields[1] ?? '', fields[2] ?? '');
    }
  }

  /** Says goodbye and closes the socket. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      this.#send('X');
    } catch {
      // closing anyway
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 500);
      this.#socket.end(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.destroy();
  }

  destroy(): void {
    this.#closed ??= new Error('client closed');
    this.#socket.destroy();
  }

  #send(type: string, payload: Buffer = Buffer.alloc(0)): void {
    if (this.#closed) throw new PcpError(`connection is closed (${this.#closed.message})`, 'FATAL');
    const header = Buffer.alloc(5);
    header.write(type, 0, 'latin1');
    header.writeInt32BE(payload.length + 4, 1);
    this.#socket.write(Buffer.concat([header, payload]));
  }

  /** Reads the next packet of `type`, skipping notices; an 'E' becomes a PcpError. */
  async #expect(type: string): Promise<Packet> {
    for (;;) {
      const packet = await this.#read();
      if (packet.type === 'N') continue;
      if (packet.type === 'E') {
        const fields = errorFields(packet.payload);
        const severity = fields.S ?? 'ERROR';
        if (severity === 'FATAL') this.destroy();
        throw new PcpError(fields.M ?? 'unknown error', severity, {
          ...(fields.D ? { detail: fields.D } : {}),
          ...(fields.C ? { sqlstate: fields.C } : {}),
        });
      }
      if (packet.type !== type) {
        throw new PcpError(`unexpected reply "${packet.type}" (wanted "${type}")`, 'ERROR');
      }
      return packet;
    }
  }

  async #read(): Promise<Packet> {
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      if (this.#buffer.length >= 5) {
        const length = this.#buffer.readInt32BE(1);
        if (length < 4 || length > MAX_PACKET) {
          this.destroy();
          throw new PcpError(`malformed packet (length ${length})`, 'FATAL');
        }
        if (this.#buffer.length >= 1 + length) {
          const type = String.fromCharCode(this.#buffer[0] ?? 0);
          const payload = this.#buffer.subarray(5, 1 + length);
          this.#buffer = this.#buffer.subarray(1 + length);
          return { type, payload };
        }
      }
      if (this.#closed) throw new PcpError(`connection lost: ${this.#closed.message}`, 'FATAL');
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        this.destroy();
        throw new PcpError(`no reply within ${this.#timeoutMs} ms`, 'FATAL');
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#waiter = undefined;
    }
  }

  #wake(): void {
    this.#waiter?.();
  }
}
