/** The FUSE worker script of `litefs mount`: opens the store on this thread and serves the mount. */
import { runFuseWorker } from '../fuse/worker-runtime.js';
import type { StoreEvent, StoreOptions } from '../store/messages.js';
import { Store } from '../store/store.js';
import { EventOutbox } from './event-outbox.js';
import { LiteFS } from './litefs-fs.js';

runFuseWorker((user, ctx) => {
  let fs: LiteFS | null = null;
  const outbox = new EventOutbox(ctx.post);
  // Events reach the file system (kernel cache invalidation) and the main thread.
  const post = (event: StoreEvent): void => {
    fs?.onStoreEvent(event);
    outbox.post(event);
  };
  const store = new Store(user as StoreOptions, post, ctx.log);
  store.open();
  fs = new LiteFS(store, post, ctx.log, ctx.notices, outbox);
  return fs;
});
