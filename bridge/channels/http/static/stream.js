// A conversation's event stream, read with fetch() rather than EventSource:
// EventSource cannot send an Authorization header, and a token never goes in
// a URL (URLs end up in logs and in the browser's history).
//
// The stream keeps the position the server sent with the last event it
// handed on, and after any drop (network, server restart, a stall longer than
// the server's heartbeats allow) reconnects with Last-Event-ID set to it, so
// the server sends every event after it exactly once. Reconnecting waits
// 0.5 s, doubling up to 5 s, and starts from 0.5 s again once connected.

import { ApiError, authHeaders } from "./api.js";

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 5000;
// The server sends a comment at least every 15 s; silence for longer than
// this means the connection is dead even if the socket has not noticed.
const STALL_MS = 40000;

// Parses the text/event-stream format, fed in chunks of any size.
export class SseParser {
  constructor(onMessage) {
    this.onMessage = onMessage;
    this.buffer = "";
    this.reset();
  }

  reset() {
    this.type = "";
    this.data = [];
    this.id = null;
  }

  feed(text) {
    this.buffer += text;
    for (;;) {
      const end = this.buffer.search(/\r\n|\r|\n/);
      if (end < 0) return;
      // A lone \r at the end may be half of \r\n: wait for the next chunk.
      if (this.buffer[end] === "\r" && end === this.buffer.length - 1) return;
      const width = this.buffer.startsWith("\r\n", end) ? 2 : 1;
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + width);
      this.line(line);
    }
  }

  line(line) {
    if (line === "") {
      if (this.data.length) this.onMessage(this.type || "message", this.data.join("\n"), this.id);
      this.reset();
      return;
    }
    if (line.startsWith(":")) return; // a comment: the heartbeat
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.type = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.id = value;
  }
}

export class EventStream {
  // onEvent(type, event): one parsed event; onState("live" | "reconnecting"
  // | "stopped"); onError(ApiError): a refusal that retrying cannot mend
  // (401, 404), after which the stream stops.
  constructor(url, position, { onEvent, onState, onError }) {
    this.url = url;
    this.position = String(position || "0");
    this.onEvent = onEvent;
    this.onState = onState || (() => {});
    this.onError = onError || (() => {});
    this.stopped = false;
    this.controller = null;
    this.delay = FIRST_DELAY_MS;
    this.wake = null;
  }

  start() {
    this.run();
    return this;
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
    if (this.wake) this.wake();
    this.onState("stopped");
  }

  // Drop the connection: the browser says the network is gone, and a socket
  // can take minutes to notice by itself. Reconnecting starts at once.
  drop() {
    if (this.controller) this.controller.abort();
  }

  // Reconnect now rather than after the backoff (the network is back).
  retryNow() {
    this.delay = FIRST_DELAY_MS;
    if (this.wake) this.wake();
    else if (this.controller) this.controller.abort();
  }

  async run() {
    while (!this.stopped) {
      let refused = null;
      try {
        await this.once();
      } catch (error) {
        if (error instanceof ApiError && !error.retryable) refused = error;
      }
      if (this.stopped) return;
      if (refused) {
        this.stopped = true;
        this.onState("stopped");
        this.onError(refused);
        return;
      }
      this.onState("reconnecting");
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, this.delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
      this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
    }
  }

  async once() {
    const controller = new AbortController();
    this.controller = controller;
    let stall = null;
    const watch = () => {
      clearTimeout(stall);
      stall = setTimeout(() => controller.abort(), STALL_MS);
    };
    watch();
    try {
      let response;
      try {
        response = await fetch(this.url, {
          headers: authHeaders({ Accept: "text/event-stream", "Last-Event-ID": this.position }),
          cache: "no-store",
          signal: controller.signal,
        });
      } catch {
        throw new ApiError(0, "the bridge cannot be reached");
      }
      if (!response.ok) {
        let body = null;
        try {
          body = await response.json();
        } catch {
          // not JSON
        }
        const e = body && body.error ? body.error : {};
        throw new ApiError(response.status, e.message || `HTTP ${response.status}`, e.hint || "");
      }
      this.delay = FIRST_DELAY_MS;
      this.onState("live");
      const parser = new SseParser((type, data, id) => this.dispatch(type, data, id));
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.stopped) break;
        watch();
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } finally {
      clearTimeout(stall);
      controller.abort();
      if (this.controller === controller) this.controller = null;
    }
  }

  dispatch(type, data, id) {
    if (this.stopped) return;
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return; // not ours to understand; its position still counts below
    } finally {
      if (id !== null) this.position = id;
    }
    this.onEvent(type, event);
  }
}
