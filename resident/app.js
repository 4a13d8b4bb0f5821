// The resident's own health code: fetched with their token, shown large with the level as
// a colour around it and as a word, refreshed before it expires, kept for offline use.
// Times are shown in the resident's own time zone.

const STORE = "healthcode.resident";
const LAST = "healthcode.resident.last";
const MIN_REFRESH_MS = 5_000;
const RETRY_MS = 15_000;

const $ = (id) => document.getElementById(id);
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
const when = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
});
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" });

let timer = null;
let qrUrl = null;

function credentials() {
  // A link from the authority carries #person=...&token=...; it is kept on this device and
  // taken out of the address bar so it is not left in history or shared with a screenshot.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("person") && fragment.get("token")) {
    const given = { person: fragment.get("person"), token: fragment.get("token") };
    localStorage.setItem(STORE, JSON.stringify(given));
    history.replaceState(null, "", location.pathname);
    return given;
  }
  try {
    const kept = JSON.parse(localStorage.getItem(STORE) || "null");
    return kept && kept.person && kept.token ? kept : null;
  } catch {
    return null;
  }
}

function showLogin(message) {
  $("code").hidden = true;
  $("login").hidden = false;
  $("forget").hidden = true;
  $("login-error").hidden = !message;
  $("login-error").textContent = message || "";
}

function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(refresh, Math.max(MIN_REFRESH_MS, ms));
}

function lapse(reason) {
  return reason.until ? `lapses ${when.format(new Date(reason.until))}` : "lasts until it is cleared";
}

function render(answer, offline) {
  const main = $("code");
  main.hidden = false;
  $("login").hidden = true;
  $("forget").hidden = false;
  const expires = new Date(answer.expires_at);
  const expired = expires.getTime() <= Date.now();
  main.dataset.level = answer.level;
  main.dataset.state = expired ? "expired" : offline ? "offline" : "current";
  main.dataset.expires = answer.expires_at;
  $("level-word").textContent = answer.level.toUpperCase();
  if (qrUrl) URL.revokeObjectURL(qrUrl);
  qrUrl = URL.createObjectURL(new Blob([answer.qr_svg], { type: "image/svg+xml" }));
  const qr = $("qr");
  qr.src = qrUrl;
  qr.alt = `health code: ${answer.level}`;
  qr.hidden = false;
  $("validity").textContent = `Valid until ${clock.format(expires)}`;
  const notice = $("notice");
  notice.hidden = !(offline || expired);
  if (expired) {
    notice.textContent = `This code expired at ${when.format(expires)}. ${offline ? "You are offline: a new code comes when you are back online." : "Fetching a new one…"}`;
  } else if (offline) {
    notice.textContent = `Offline: this is your last code. It stops being valid at ${when.format(expires)}.`;
  }
  const list = $("reason-list");
  list.replaceChildren();
  for (const reason of answer.reasons) {
    const item = document.createElement("li");
    item.dataset.rule = reason.rule;
    const head = document.createElement("p");
    head.textContent = `${reason.level.toUpperCase()}: ${reason.what}. Since ${when.format(new Date(reason.since))}; ${lapse(reason)}.`;
    item.append(head);
    if (reason.clears_early.length) {
      const ways = document.createElement("ul");
      ways.className = "clear";
      for (const way of reason.clears_early) {
        const entry = document.createElement("li");
        entry.textContent = `Clears early ${way}.`;
        ways.append(entry);
      }
      item.append(ways);
    }
    list.append(item);
  }
  $("reasons").hidden = answer.reasons.length === 0;
  $("zone").textContent = `Times in your time zone (${zone}).`;
}

function showLast() {
  try {
    const last = JSON.parse(localStorage.getItem(LAST) || "null");
    if (last && last.qr_svg) {
      render(last, true);
      return true;
    }
  } catch {
    // a damaged copy is as good as none
  }
  return false;
}

async function refresh() {
  const given = credentials();
  if (!given) {
    showLogin("");
    return;
  }
  let response;
  try {
    response = await fetch(`/residents/${encodeURIComponent(given.person)}/code?qr=svg`, {
      headers: { Authorization: `Bearer ${given.token}` },
      cache: "no-store",
    });
  } catch {
    if (!showLast()) showLogin("You are offline and no code is kept on this device yet.");
    schedule(RETRY_MS);
    return;
  }
  if (response.status === 401) {
    localStorage.removeItem(STORE);
    localStorage.removeItem(LAST);
    showLogin("That pseudonym and token were not accepted.");
    return;
  }
  if (!response.ok) {
    const wait = Number(response.headers.get("Retry-After")) * 1000 || RETRY_MS;
    if (!showLast()) {
      const problem = await response.json().catch(() => ({}));
      showLogin(problem.error || `The service answered ${response.status}; trying again.`);
    }
    schedule(wait);
    return;
  }
  const answer = await response.json();
  localStorage.setItem(LAST, JSON.stringify(answer));
  render(answer, false);
  // A fresh code well before this one expires: half way through its life, and at least a minute early.
  const issued = new Date(answer.issued_at).getTime();
  const expires = new Date(answer.expires_at).getTime();
  schedule(Math.min(issued + (expires - issued) / 2, expires - 60_000) - Date.now());
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  const person = $("person").value.trim();
  const token = $("token").value.trim();
  localStorage.setItem(STORE, JSON.stringify({ person, token }));
  refresh();
});

$("forget").addEventListener("click", () => {
  localStorage.removeItem(STORE);
  localStorage.removeItem(LAST);
  clearTimeout(timer);
  showLogin("");
});

window.addEventListener("online", refresh);
window.addEventListener("offline", () => showLast());
window.addEventListener("hashchange", refresh);

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(() => {});
}
refresh();
