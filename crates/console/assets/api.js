// The admin API, called with the token the user signed in with. The token lives in
// this tab's session storage and goes in the Authorization header of each call:
// never a cookie, so no other site can make the browser use it.

const KEY = 'verge-token';

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

/** A refused or failed call: the HTTP status (0: no answer) and the API's reason. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let onSignedOut = () => {};

/** What to do when the token stops working (revoked, expired). */
export function whenSignedOut(f) {
  onSignedOut = f;
}

/** `method path` with a JSON body; the JSON answer, or an `ApiError`. */
export async function api(method, path, body) {
  const headers = { authorization: `Bearer ${token.get()}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (e) {
    throw new ApiError(0, `the node did not answer (${e.message})`);
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const reason = (data && data.error) || text || resp.statusText;
    if (resp.status === 401) onSignedOut(reason);
    throw new ApiError(resp.status, reason);
  }
  return data;
}

/** A path segment. */
export const seg = encodeURIComponent;
