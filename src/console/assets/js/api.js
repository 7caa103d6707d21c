// The REST API as the console calls it. The session cookie authenticates
// (the page never sees the token); every call carries X-Mlhook-Console: 1,
// which the server requires of cookie-authenticated writes (CSRF).

/** An error answer of the API: {status, code, message, field, details}. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `the server answered ${status}`);
    this.status = status;
    this.code = error.code || 'unknown';
    this.field = error.field || null;
    this.details = error.details || [];
  }
}

let onSignedOut = () => {};
/** What to do when the API says the session is gone (401). */
export function whenSignedOut(fn) {
  onSignedOut = fn;
}

export async function api(method, path, body) {
  return (await exchange(method, path, body)).data;
}

/** `api`, answering the answer's headers too: `{data, headers}`. */
export async function exchange(method, path, body) {
  const headers = { 'X-Mlhook-Console': '1', Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { error: { code: 'unreachable', message: `mlhook cannot be reached (${e.message})` } });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: { code: 'bad_answer', message: text.slice(0, 300) } };
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && !path.startsWith('/console/session')) onSignedOut();
    throw error;
  }
  return { data, headers: response.headers };
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body === undefined ? {} : body);
export const patch = (path, body) => api('PATCH', path, body);
export const del = (path) => api('DELETE', path);

/** Path of a project's resource: p('fraud-team', 'webhooks', id). */
export function p(project, ...rest) {
  return ['/v1/projects', project, ...rest].map((s, i) => (i === 0 ? s : encodeURIComponent(s))).join('/');
}

/** A query string from the set values of `params`. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const text = q.toString();
  return text ? `?${text}` : '';
}

// Read-mostly lists, kept for the session: formats and the event catalog
// never change while the server runs.
const cache = new Map();
export function cached(path) {
  if (!cache.has(path)) {
    cache.set(path, get(path).catch((e) => {
      cache.delete(path);
      throw e;
    }));
  }
  return cache.get(path);
}
