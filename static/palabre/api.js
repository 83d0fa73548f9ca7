// The HTTP half of PROTOCOL.md: JSON in and out, X-CSRFToken on every POST, errors as
// {"error": {"code", "message"}}.
import { gettext } from "./i18n.js";

// PALABRE_UPLOAD_MAX_FILES: the documents one request may carry; more go one by one.
export const FILES_PER_REQUEST = 4;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

async function csrfToken() {
  // The cookie is read at each POST: logging in rotates it.
  const token = cookie("csrftoken");
  if (token) return token;
  const answer = await request("/api/v1/auth/csrf");
  return answer.csrftoken;
}

async function request(path, { method = "GET", body, form } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-CSRFToken"] = await csrfToken();
    // A FormData body sets its own multipart Content-Type, boundary included.
    if (body !== undefined) headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: form !== undefined ? form : body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network", gettext("The server cannot be reached. Check your connection."));
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    const apiError = new ApiError(response.status, error.code || `http_${response.status}`, error.message || gettext("The server refused the request."));
    // What else the error names: the member a decision failed on, when to retry.
    apiError.memberId = error.member_id ?? null;
    apiError.retryAfterMs = error.retry_after_ms ?? null;
    throw apiError;
  }
  return data;
}

export const api = {
  get: (path) => request(path),
  post: (path, body) => request(path, { method: "POST", body: body === undefined ? {} : body }),

  me: async () => {
    try {
      return await request("/api/v1/auth/me");
    } catch (error) {
      if (error.status === 401 || error.status === 403) return null;
      throw error;
    }
  },
  login: (username, password) => request("/api/v1/auth/login", { method: "POST", body: { username, password } }),
  logout: () => request("/api/v1/auth/logout", { method: "POST", body: {} }),
  mediations: () => request("/api/v1/mediations"),
  mediation: (id) => request(`/api/v1/mediations/${encodeURIComponent(id)}`),
  /** Answers and files go as multipart (the server takes FILES_PER_REQUEST at most). */
  register: (id, answers = null, files = []) => {
    const path = `/api/v1/mediations/${encodeURIComponent(id)}/register`;
    if (!answers && files.length === 0) return request(path, { method: "POST", body: {} });
    const form = new FormData();
    form.append("answers", JSON.stringify(answers || {}));
    for (const file of files) form.append("documents", file, file.name);
    return request(path, { method: "POST", form });
  },
  registration: (id) => request(`/api/v1/mediations/${encodeURIComponent(id)}/registration`),
  addDocument: (id, file) => {
    const form = new FormData();
    form.append("file", file, file.name);
    return request(`/api/v1/mediations/${encodeURIComponent(id)}/registration/documents`, { method: "POST", form });
  },
  registrations: (id, { status = "pending", after = null, limit = 50 } = {}) => {
    const params = new URLSearchParams({ status, limit: String(limit) });
    if (after) params.set("after", after);
    return request(`/api/v1/mediations/${encodeURIComponent(id)}/registrations?${params}`);
  },
  decide: (id, decisions) => request(`/api/v1/mediations/${encodeURIComponent(id)}/registrations/decide`, { method: "POST", body: { decisions } }),
  advance: (id, phase) => request(`/api/v1/mediations/${encodeURIComponent(id)}/advance`, { method: "POST", body: { phase } }),
  setNotices: (id, enabled) => request(`/api/v1/mediations/${encodeURIComponent(id)}/notices`, { method: "POST", body: { enabled } }),
  rooms: (mediationId) => request(`/api/v1/mediations/${encodeURIComponent(mediationId)}/rooms`),
  members: (mediationId, { q = "", after = null, limit = 100 } = {}) => {
    const params = new URLSearchParams({ limit: String(limit) });
    if (q) params.set("q", q);
    if (after) params.set("after", after);
    return request(`/api/v1/mediations/${encodeURIComponent(mediationId)}/members?${params}`);
  },
  seal: (ballotId) => request(`/api/v1/ballots/${encodeURIComponent(ballotId)}/seal`),
  proof: (ballotId, receipt) =>
    request(`/api/v1/ballots/${encodeURIComponent(ballotId)}/proof?receipt=${encodeURIComponent(receipt)}`),
  board: (ballotId) => request(`/api/v1/ballots/${encodeURIComponent(ballotId)}/board`),
  keys: () => request("/api/v1/keys"),
};
