/**
 * Request/response over the FUSE thread's message port: each StoreCommand
 * that expects an answer gets an id, and the matching `commandResult` event
 * resolves it. The FUSE thread answers every such command exactly once.
 */
import type {
  ApplyCommand,
  HaltHoldCommand,
  HaltLockCommand,
  HaltUnlockCommand,
  ImageHoldCommand,
  ImportCommand,
  StoreCommand,
  StoreCommandResult,
  TxBarrierCommand,
} from '../store/messages.js';

/** A command without its id: the channel numbers them. */
export type StoreRequest =
  | Omit<ImportCommand, 'id'>
  | Omit<ApplyCommand, 'id'>
  | Omit<TxBarrierCommand, 'id'>
  | Omit<HaltLockCommand, 'id'>
  | Omit<HaltUnlockCommand, 'id'>
  | Omit<HaltHoldCommand, 'id'>
  | Omit<ImageHoldCommand, 'id'>;

export class StoreChannel {
  private nextID = 1;
  private readonly pending = new Map<number, (result: StoreCommandResult) => void>();

  /** `post` hands a command to the FUSE thread (and wakes it). */
  constructor(private readonly post: (cmd: StoreCommand) => void) {}

  request(req: StoreRequest): Promise<StoreCommandResult> {
    const id = this.nextID++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.post({ ...req, id } as StoreCommand);
    });
  }

  /** A command that expects no answer. */
  tell(cmd: StoreCommand): void {
    this.post(cmd);
  }

  /** A `commandResult` from the FUSE thread. */
  onResult(result: StoreCommandResult): void {
    const resolve = this.pending.get(result.id);
    this.pending.delete(result.id);
    resolve?.(result);
  }

  /** The FUSE thread is gone: fail everything still waiting. */
  close(message: string): void {
    for (const [id, resolve] of this.pending) resolve({ type: 'commandResult', id, status: 'error', message });
    this.pending.clear();
  }
}
