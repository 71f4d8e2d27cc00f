// Type declarations of the lfsync package, written by hand to mirror the
// JSON the wasm runtime exchanges (wasm/options.go, wasm/client.go).

export declare const version: string;

/** What went wrong, on every rejection and thrown error. */
export type ErrorCode =
  | "invalid"
  | "not_found"
  | "closed"
  | "quota_exceeded"
  | "unauthorized"
  | "forbidden"
  | "conflict"
  | "timeout"
  | "internal";

export declare class LfsyncError extends Error {
  constructor(message: string, code?: ErrorCode);
  readonly name: "LfsyncError";
  readonly code: ErrorCode;
}

/** A document: any JSON object with a string id. */
export interface Doc {
  id: string;
  [field: string]: unknown;
}

export type ConflictStrategy = "lastWriteWins" | "serverWins" | "clientWins" | "fieldMerge";

/**
 * Merges a local document that has unsynced changes with a remote one.
 * Either is null when that side deleted it; return null to delete. Runs
 * synchronously: keep it pure and do not call the client from it.
 */
export type ConflictResolver = (local: Doc | null, remote: Doc | null) => Doc | null;

export interface ReconnectOptions {
  /** First delay, ms (default 1000). */
  initial?: number;
  /** Longest delay, ms (default 30000). */
  max?: number;
  /** Growth per attempt (default 2). */
  multiplier?: number;
  /** Attempts before giving up; 0 = unlimited (default). */
  maxAttempts?: number;
}

export interface HeartbeatOptions {
  /** Ping interval, ms (default 25000). */
  interval?: number;
  /** Silence after a ping that drops the socket, ms (default 10000). */
  timeout?: number;
}

export interface EventError {
  repository: string;
  eventId: string;
  message: string;
}

export interface ClientOptions {
  /** The server's WebSocket endpoint, e.g. "ws://localhost:8080/sync". */
  url?: string;
  token?: string;
  /** Spread into the auth frame. */
  headers?: Record<string, string>;
  /** Synced from the start; repository(name) adds more. */
  repositories?: string[];
  /** IndexedDB database name (default "lfsync"). */
  database?: string;
  /** Default "lastWriteWins"; a function means a custom merge. */
  conflict?: ConflictStrategy | ConflictResolver;
  reconnect?: ReconnectOptions;
  heartbeat?: HeartbeatOptions;
  /** Bound on dialing plus authenticating, ms (default 10000). */
  connectTimeout?: number;
  /** Most events per pushed batch (default 500). */
  batchSize?: number;
  /** Events per pulled page (default 500). */
  pageSize?: number;
  /** This replica's id; by default generated once and kept in the database. */
  clientId?: string;
  /** Join the tabs' leader election at once, so this tab syncs when elected (default true). */
  autoStart?: boolean;
  /** Called when the server rejects the credentials; the token it returns is used to reconnect. */
  refreshToken?: () => string | Promise<string>;
  /** Told about each remote event that could not be applied and was skipped. */
  onEventError?: (error: EventError) => void;
  /** Receives the engine's diagnostic lines. */
  log?: (line: string) => void;
  /** Where lfsync.wasm is (default: beside index.js). Only the first client of a page loads it. */
  wasmURL?: string | URL;
}

export type State =
  | "disconnected"
  | "connecting"
  | "authenticating"
  | "connected"
  | "reconnecting"
  | "unauthorized"
  | "stopped";

/**
 * Sync status. Every tab of an origin shows the same: one tab per database
 * (the leader) owns the connection and the others show its state.
 */
export interface Status {
  /** The leader's connection state ("connecting" while no leader is known yet). */
  state: State;
  /** Local changes of every tab not yet acknowledged by the server (one shared outbox). */
  pending: number;
  /** When the leader last caught up with the server, null before the first time. */
  lastSync: Date | null;
  lastError: string | null;
  /** Whether this tab's client owns the connection (true in every tab where Web Locks are missing). */
  leader: boolean;
  /** Clients of this database open in the origin's tabs, this one included. */
  tabs: number;
}

export interface Metrics {
  reconnects: number;
  eventsSent: number;
  eventsReceived: number;
  eventsAcked: number;
  bytesSent: number;
  bytesReceived: number;
  failedSends: number;
  /** Writes recomputed because another tab wrote the same repository in between. */
  staleWrites: number;
  /** Pending outbox events. */
  queueSize: number;
  /** Mean time from losing a connection to the next accepted one, ms. */
  avgReconnectMs: number;
  lastConnected: Date | null;
  lastDisconnected: Date | null;
}

export type Op =
  | "=="
  | "!="
  | "<"
  | "<="
  | ">"
  | ">="
  | "in"
  | "notIn"
  | "contains"
  | "startsWith"
  | "endsWith"
  | "isNull"
  | "isNotNull";

export interface Condition {
  /** A dotted path into the document, e.g. "author.name"; missing means null. */
  field: string;
  op: Op;
  /** Omitted for isNull and isNotNull; an array for in and notIn. */
  value?: unknown;
}

export interface Order {
  field: string;
  desc?: boolean;
}

export interface Query {
  /** Conditions, ANDed. */
  where?: Condition[];
  /** Nulls first ascending, last descending. */
  orderBy?: Order[];
  limit?: number;
  offset?: number;
}

export interface WriteOptions {
  /** Write locally only: the change is never synced. */
  localOnly?: boolean;
}

export declare class Repository<T extends { id: string } = Doc> {
  private constructor();
  readonly name: string;
  /** Inserts or replaces a document; resolves once IndexedDB committed it. */
  upsert(doc: T, options?: WriteOptions): Promise<void>;
  /** Inserts or replaces several documents in one atomic write. */
  upsertMany(docs: T[], options?: WriteOptions): Promise<void>;
  get(id: string): Promise<T | null>;
  /** Every document, ordered by id. */
  getAll(): Promise<T[]>;
  query(query: Query): Promise<T[]>;
  /** Calls callback with the result at once and on every change; returns the unsubscribe function. */
  watch(callback: (docs: T[]) => void): () => void;
  watch(query: Query | undefined, callback: (docs: T[]) => void): () => void;
  delete(id: string, options?: WriteOptions): Promise<void>;
}

export declare class Client {
  private constructor();
  readonly clientId: string;
  repository<T extends { id: string } = Doc>(name: string): Repository<T>;
  /** Joins the leader election: syncs when this tab leads, follows the leader otherwise. */
  start(): Promise<void>;
  /** Leaves the election; a leader hands the connection to another tab. Reads and writes keep working. */
  stop(): Promise<void>;
  close(): Promise<void>;
  /** Resolves once the leader is connected, caught up and the outbox is empty; rejects with code "timeout" after options.timeout ms. */
  waitSynced(options?: { timeout?: number }): Promise<void>;
  /** Returns the function that stops listening. */
  onStatus(listener: (status: Status) => void): () => void;
  status(): Status;
  /** This tab's engine's counters (a follower's stay at zero: it never connects). */
  metrics(): Metrics;
  updateAuthToken(token: string): void;
  updateHeaders(headers: Record<string, string>): void;
  updateCredentials(credentials: { token: string; headers?: Record<string, string> }): void;
}

export declare function createClient(options?: ClientOptions): Promise<Client>;
