// The live half of PROTOCOL.md for one room: connect, `sync` from the last seq seen, and
// hand every logged event to the page exactly once and in seq order, across any number
// of dropped connections. The room log is gapless (1, 2, 3 …), so "seen everything up to
// lastSeq" is one number: an event beyond lastSeq + 1 waits until the gap is filled by a
// sync, and an event at or below lastSeq is a duplicate (a live copy of what a sync
// already sent, or the other way round).

export const State = Object.freeze({
  CONNECTING: "connecting",
  SYNCING: "syncing",
  LIVE: "live",
  RECONNECTING: "reconnecting",
  OFFLINE: "offline",
  REFUSED: "refused",
  LOGGED_OUT: "logged_out",
});

const CLOSE_LOGGED_OUT = 4401;
const CLOSE_FORBIDDEN = 4403;
const CLOSE_TOO_SLOW = 4409;

// A silent socket is pinged after IDLE_PING_MS and given up after IDLE_DEAD_MS: a
// connection can die without a close event (a phone changing networks, a sleeping laptop).
const HEARTBEAT_MS = 5000;
const IDLE_PING_MS = 20000;
const IDLE_DEAD_MS = 35000;
const MAX_RETRY_MS = 15000;
const REQUEST_TIMEOUT_MS = 15000;

export class RequestError extends Error {
  constructor(code, message, frame = null) {
    super(message || code);
    this.code = code;
    this.frame = frame;
  }
}

const isLogged = (frame) => Number.isInteger(frame.seq) && typeof frame.at === "string";

export class RoomConnection {
  /**
   * handlers: onWelcome(frame), onEvent(frame) for logged events (in order, once),
   * onFrame(frame) for the rest (progress, counts, caucus.opened, errors without ref),
   * onState(state, detail).
   */
  constructor(roomId, handlers) {
    this.roomId = String(roomId);
    this.handlers = handlers;
    this.lastSeq = 0;
    this.pending = new Map();
    this.waiting = new Map();
    this.ws = null;
    this.welcomed = false;
    this.syncing = false;
    this.syncRef = null;
    this.resyncs = 0;
    this.attempt = 0;
    this.failedHandshakes = 0;
    this.refs = 0;
    this.stopped = false;
    this.state = null;
    this.onOnline = () => this.reconnectNow();
    this.onOffline = () => this.drop(State.OFFLINE);
  }

  start() {
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    this.open();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    clearTimeout(this.retryTimer);
    this.stopHeartbeat();
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }

  get ready() {
    return Boolean(this.ws && this.welcomed && this.ws.readyState === WebSocket.OPEN);
  }

  setState(state, detail = {}) {
    this.state = state;
    this.handlers.onState?.(state, detail);
  }

  open() {
    clearTimeout(this.retryTimer);
    if (this.stopped) return;
    if (!navigator.onLine) {
      this.setState(State.OFFLINE);
      return;
    }
    this.setState(this.attempt ? State.RECONNECTING : State.CONNECTING, { retryAt: null });
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/rooms/${encodeURIComponent(this.roomId)}/`);
    this.ws = ws;
    this.welcomed = false;
    this.syncing = false;
    ws.addEventListener("message", (message) => {
      if (ws === this.ws) this.receive(message.data);
    });
    ws.addEventListener("close", (event) => {
      if (ws === this.ws) this.closed(event.code);
    });
  }

  /** Gives up on the current socket now (offline, or silent for too long). */
  drop(state = null) {
    const ws = this.ws;
    if (!ws) {
      if (state) this.setState(state);
      return;
    }
    this.ws = null;
    ws.close(4000);
    this.closed(1006, state);
  }

  reconnectNow() {
    if (this.stopped || this.state === State.REFUSED || this.state === State.LOGGED_OUT) return;
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) return;
    this.attempt = Math.max(this.attempt, 1);
    this.open();
  }

  closed(code, forcedState = null) {
    this.ws = null;
    this.stopHeartbeat();
    this.syncing = false;
    for (const [ref, waiter] of this.waiting) {
      this.waiting.delete(ref);
      waiter.reject(new RequestError("disconnected"));
    }
    if (this.stopped) return;
    if (code === CLOSE_FORBIDDEN) return this.setState(State.REFUSED);
    if (code === CLOSE_LOGGED_OUT) return this.setState(State.LOGGED_OUT);
    if (!this.welcomed) this.failedHandshakes += 1;
    this.welcomed = false;
    if (forcedState === State.OFFLINE || !navigator.onLine) return this.setState(State.OFFLINE);
    if (this.failedHandshakes >= 3) {
      // A refusal at the HTTP upgrade looks like any network failure: ask the HTTP API.
      this.failedHandshakes = 0;
      this.probe();
    }
    // Too slow (4409): straight back, once; any failure after that backs off.
    const delay = code === CLOSE_TOO_SLOW && this.attempt === 0 ? 0 : Math.min(MAX_RETRY_MS, 500 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt += 1;
    this.setState(State.RECONNECTING, { retryAt: Date.now() + delay });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  async probe() {
    try {
      const response = await fetch(`/api/v1/rooms/${encodeURIComponent(this.roomId)}/events?after_seq=0&limit=1`, {
        credentials: "same-origin",
      });
      if (response.status === 401) this.refuse(State.LOGGED_OUT);
      else if (response.status === 403 || response.status === 404) this.refuse(State.REFUSED);
    } catch {
      // Still unreachable: keep retrying.
    }
  }

  refuse(state) {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
    this.setState(state);
  }

  // --- frames in ----------------------------------------------------------------------

  receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    this.lastHeard = Date.now();
    if (frame.type === "welcome") {
      this.welcomed = true;
      this.attempt = 0;
      this.failedHandshakes = 0;
      this.resyncs = 0;
      this.handlers.onWelcome?.(frame);
      this.startHeartbeat();
      this.sync();
      return;
    }
    if (isLogged(frame)) {
      this.logged(frame);
      return;
    }
    if (frame.ref && frame.ref === this.syncRef) {
      if (frame.type === "synced") this.synced(frame);
      else if (frame.type === "error") this.syncFailed(frame);
      return;
    }
    if (frame.type === "pong" && !this.waiting.has(frame.ref)) return;
    const waiter = frame.ref ? this.waiting.get(frame.ref) : null;
    if (waiter) {
      this.waiting.delete(frame.ref);
      clearTimeout(waiter.timer);
      if (frame.type === "error") waiter.reject(new RequestError(frame.code, frame.message, frame));
      else waiter.resolve(frame);
      if (frame.type === "caucus.opened") this.handlers.onFrame?.(frame);
      return;
    }
    this.handlers.onFrame?.(frame);
  }

  logged(frame) {
    if (frame.seq <= this.lastSeq || this.pending.has(frame.seq)) return;
    if (frame.seq !== this.lastSeq + 1) {
      this.pending.set(frame.seq, frame);
      if (!this.syncing) this.sync();
      return;
    }
    this.deliver(frame);
    while (this.pending.has(this.lastSeq + 1)) {
      const next = this.pending.get(this.lastSeq + 1);
      this.pending.delete(next.seq);
      this.deliver(next);
    }
  }

  deliver(frame) {
    this.lastSeq = frame.seq;
    try {
      this.handlers.onEvent?.(frame);
    } catch (error) {
      // One event the page can't show must not stop the ones after it.
      console.error("palabre: event", frame.type, frame.seq, error);
    }
  }

  sync() {
    if (!this.ready) return;
    this.syncing = true;
    this.refs += 1;
    this.syncRef = `sync-${this.refs}`;
    this.setState(State.SYNCING);
    this.ws.send(JSON.stringify({ type: "sync", after_seq: this.lastSeq, ref: this.syncRef }));
  }

  synced(frame) {
    this.syncing = false;
    this.syncRef = null;
    const behind = this.lastSeq < frame.last_seq || this.pending.size > 0;
    if (behind && this.resyncs < 3) {
      this.resyncs += 1;
      this.sync();
      return;
    }
    this.resyncs = 0;
    this.setState(State.LIVE);
  }

  syncFailed(frame) {
    this.syncing = false;
    this.syncRef = null;
    if (frame.code === "forbidden") {
      this.refuse(State.REFUSED);
      return;
    }
    // rate_limited, unavailable: the same sync, a little later.
    clearTimeout(this.syncTimer);
    this.syncTimer = setTimeout(() => this.sync(), Math.max(500, frame.retry_after_ms || 0));
  }

  // --- frames out ---------------------------------------------------------------------

  /** Sends a frame with a fresh ref; resolves with its direct answer, rejects on `error`. */
  request(frame, timeoutMs = REQUEST_TIMEOUT_MS) {
    if (!this.ready) return Promise.reject(new RequestError("offline"));
    this.refs += 1;
    const ref = `r${this.refs}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(ref);
        reject(new RequestError("timeout"));
      }, timeoutMs);
      this.waiting.set(ref, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...frame, ref }));
    });
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.heartbeat = setInterval(() => {
      const idle = Date.now() - (this.lastHeard || 0);
      if (idle > IDLE_DEAD_MS) this.drop();
      else if (idle > IDLE_PING_MS && this.ready) this.ws.send(JSON.stringify({ type: "ping" }));
    }, HEARTBEAT_MS);
  }

  stopHeartbeat() {
    clearInterval(this.heartbeat);
    this.heartbeat = null;
  }
}
