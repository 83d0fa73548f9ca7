// The HTTP half of PROTOCOL.md: JSON in and out, X-CSRFToken on every POST, errors as
// {"error": {"code", "message"}}.
import { gettext } from "./i18n.js";

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

async function request(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-CSRFToken"] = await csrfToken();
    if (body !== undefined) headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
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
    throw new ApiError(response.status, error.code || `http_${response.status}`, error.message || gettext("The server refused the request."));
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
  register: (id) => request(`/api/v1/mediations/${encodeURIComponent(id)}/register`, { method: "POST", body: {} }),
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
