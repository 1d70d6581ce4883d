// The HTTP API of the bridge, as the page uses it.
//
// Every call sends the bearer token kept in localStorage (when there is one)
// and turns a failure into an ApiError with the server's own message and
// hint. URLs are relative to the page, so it works behind a proxy that
// serves the bridge under a path prefix.

export const TOKEN_KEY = "agentproc.token";

export function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return ""; // storage disabled: the page still works on an open server
  }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // nothing to keep it in; the next 401 asks again
  }
}

export function authHeaders(extra = {}) {
  const token = getToken();
  return token ? { ...extra, Authorization: `Bearer ${token}` } : { ...extra };
}

export class ApiError extends Error {
  // status 0: the request never got an answer (network down, server gone).
  constructor(status, message, hint = "", code = "") {
    super(message);
    this.status = status;
    this.hint = hint;
    this.code = code;
  }

  get network() {
    return this.status === 0;
  }

  // Worth sending again with the same idempotency key.
  get retryable() {
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy's page, say
  }
  const error = body && body.error;
  if (error && typeof error.message === "string") {
    return new ApiError(response.status, error.message, error.hint || "", error.code || "");
  }
  return new ApiError(
    response.status,
    `the server answered ${response.status} ${response.statusText}`.trim(),
  );
}

export async function call(method, path, body = undefined, headers = {}) {
  const init = { method, headers: authHeaders(headers), cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "the bridge cannot be reached", "check the network; retrying is safe");
  }
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

const conv = (id) => `v1/conversations/${encodeURIComponent(id)}`;

export const api = {
  routes: () => call("GET", "v1/routes"),
  conversations: () => call("GET", "v1/conversations"),
  conversation: (id) => call("GET", conv(id)),
  create: (route, title) => call("POST", "v1/conversations", { route, title }),
  turns: (id) => call("GET", `${conv(id)}/turns`),
  send: (id, text, key) => call("POST", `${conv(id)}/messages`, { text }, { "Idempotency-Key": key }),
  cancel: (id) => call("POST", `${conv(id)}/cancel`),
  reset: (id) => call("POST", `${conv(id)}/reset`),
  remove: (id) => call("DELETE", conv(id)),
  answer: (approvalId, decision) =>
    call("POST", `v1/approvals/${encodeURIComponent(approvalId)}`, { decision }),
  eventsUrl: (id) => `${conv(id)}/events`,
  // Admins only: anyone else is answered 403.
  pairings: () => call("GET", "v1/pairings"),
  decidePairing: (code, decision) =>
    call("POST", `v1/pairings/${encodeURIComponent(code)}`, { decision }),
};

// A random key for one message, kept with it so every retry sends the same.
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
