// The UI's calls to the gateway. The admin key lives in this tab's session storage and goes
// out as an Authorization header only (never a cookie: another site cannot make us send it).

const KEY = "modelmux-admin-key";
// The gateway's root, from where this module is served (<root>/ui/static/api.js): works behind a path prefix.
export const ROOT = new URL("../../", import.meta.url);

export class AuthError extends Error {}

export function adminKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setAdminKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export function headers(key = adminKey()) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** GET a /ui/api endpoint; throws AuthError on 401/403 (with the server's message), Error otherwise. */
export async function getData(path, params = {}, key = adminKey()) {
  const url = new URL(`ui/api/${path}`, ROOT);
  for (const [name, value] of Object.entries(params)) {
    if (value !== "" && value != null) url.searchParams.set(name, value);
  }
  const response = await fetch(url, { headers: headers(key), cache: "no-store" });
  const body = await response.json().catch(() => null);
  if (response.ok) return body;
  const message = body?.error?.message || `${response.status} ${response.statusText}`;
  if (response.status === 401 || response.status === 403) throw new AuthError(message);
  throw new Error(message);
}
