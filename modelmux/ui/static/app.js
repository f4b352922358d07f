// The web UI's entry point: sign-in, tabs, and the refresh loop (polling /ui/api, no page reload).

import { AuthError, adminKey, getData, setAdminKey } from "./api.js";
import { refreshConfig, setupConfig } from "./config.js";
import { refreshOverview } from "./overview.js";
import { setupPlayground } from "./playground.js";
import { refreshRequests } from "./requests.js";

const $ = (id) => document.getElementById(id);
const PANELS = ["overview", "requests", "config", "playground"];
let session = null;
let current = "overview";
let timer = null;

function notice(text) {
  $("notice").textContent = text || "";
  $("notice").hidden = !text;
}

function showSignIn(message) {
  session = null;
  clearTimeout(timer);
  for (const id of PANELS) $(id).hidden = true;
  $("tabs").hidden = true;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  $("signin").hidden = false;
  $("signin-error").textContent = message || "";
  $("admin-key").focus();
}

function select(name) {
  current = name;
  for (const id of PANELS) {
    $(id).hidden = id !== name;
    $(`tab-${id}`).setAttribute("aria-selected", String(id === name));
  }
  refresh();
}

async function refresh() {
  clearTimeout(timer);
  if (!session) return;
  try {
    if (current === "overview") await refreshOverview();
    else if (current === "requests") await refreshRequests(session.models);
    else if (current === "config") await refreshConfig();
    notice("");
  } catch (error) {
    if (error instanceof AuthError) {
      setAdminKey("");
      showSignIn(error.message);
      return;
    }
    notice(`Could not refresh: ${error.message}`);
  }
  // The configuration does not change while the server runs; the playground has nothing to poll.
  if (current === "overview" || current === "requests") timer = setTimeout(refresh, session.refresh_seconds * 1000);
}

async function start(key) {
  session = await getData("session", {}, key);
  $("signin").hidden = true;
  $("tabs").hidden = false;
  $("version").textContent = session.version ? `v${session.version}` : "";
  if (session.auth === "loopback") {
    $("who").textContent = "open on loopback (no server.admin_api_keys)";
  } else {
    $("who").textContent = `signed in (${session.signed_in_as})`;
    $("sign-out").hidden = false;
  }
  setupPlayground(session);
  select(current);
}

async function boot() {
  for (const id of PANELS) $(`tab-${id}`).addEventListener("click", () => select(id));
  $("request-filters").addEventListener("change", () => refresh());
  $("request-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    refresh();
  });
  setupConfig();
  $("sign-out").addEventListener("click", () => {
    setAdminKey("");
    showSignIn("");
  });
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = $("admin-key").value.trim();
    setAdminKey(key);
    try {
      await start(key);
      $("admin-key").value = "";
    } catch (error) {
      setAdminKey("");
      showSignIn(error.message);
    }
  });
  try {
    await start(adminKey());
  } catch (error) {
    // No key yet (or a stale one): the sign-in form; the server's message says why.
    showSignIn(adminKey() ? error.message : "");
    if (!(error instanceof AuthError)) notice(error.message);
  }
}

boot();
