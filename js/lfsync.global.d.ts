// Types of the script-tag build (lfsync.global.js), which defines
// window.lfsync. A page typed with TypeScript gets them from
// `import "lfsync/lfsync.global.js"` (or a type-only import of this file).
import type * as api from "./index.js";

export interface LfsyncGlobal {
  readonly version: string;
  /** Loads index.js (and then the runtime) and creates a client. */
  createClient(options?: api.ClientOptions): Promise<api.Client>;
  /** Resolves with the module once index.js has loaded; then LfsyncError, Client and Repository are set. */
  readonly ready: Promise<typeof api>;
  LfsyncError?: typeof api.LfsyncError;
  Client?: typeof api.Client;
  Repository?: typeof api.Repository;
}

declare global {
  interface Window {
    lfsync: LfsyncGlobal;
  }
  var lfsync: LfsyncGlobal;
}
