// The checkpoint page: input (keyboard wedge, typing, camera), the lists on the device,
// and the full-screen verdict. Verification itself is verify.js.
//
// Kept on the device (localStorage): the last good signed lists, the pinned list-signing
// key, and counts of admitted and refused codes by reason. Never a code or a pseudonym.

import { prepareZXingModule, readBarcodes } from "./vendor/zxing-wasm/es/reader/index.js";
import {
  ListError, claimsVerified, importKeyRecord, openSignedList, parseRevocationList, parseTrustList, verifyCode,
} from "./verify.js";

const PLAIN = {
  OK: "Valid code, level admitted",
  MALFORMED_PREFIX: "Not a health code",
  BASE45_INVALID: "Damaged code: characters a code cannot have",
  DECOMPRESS_FAILED: "Damaged code: it cannot be unpacked",
  COSE_INVALID: "Damaged or forged code: wrong structure",
  CLAIMS_INVALID: "Damaged or forged code: wrong contents",
  UNSUPPORTED_ALGORITHM: "Signed in a way this checkpoint does not accept",
  UNKNOWN_KEY: "Signed by an issuer this checkpoint does not know",
  SIGNATURE_INVALID: "Forged or altered code: the signature does not match",
  KEY_REVOKED: "The issuer's signing key has been revoked",
  KEY_NOT_VALID: "Signed outside the issuer key's period of validity",
  NOT_YET_VALID: "Not valid yet (check this device's clock)",
  EXPIRED: "Expired",
  REVOKED: "This code has been revoked",
  LEVEL_NOT_ADMITTED: "This level is not admitted here",
  NO_TRUST_LIST: "No verified trust list on this device: cannot verify",
};
const LEVELS = ["green", "yellow", "red"];
const STORE = { pin: "hc.listKey", trust: "hc.trustList", revoked: "hc.revocationList", counts: "hc.counts" };
// The same code held in front of the camera is verified (and counted) once per this long.
const RESCAN_MS = 5000;

const $ = (id) => document.getElementById(id);
const state = { admit: ["green"], pin: null, trust: null, revoked: null, problems: [], lastScan: null };
// Milliseconds from a code entering the page (submit event, camera frame grabbed) to its
// verdict written into the page, and to the next animation frame (the verdict on screen).
const timings = { input: [], camera: [], inputFrame: [], cameraFrame: [] };
window.checkpoint = { state, timings };

// ---- policy ----------------------------------------------------------------------------

function admitFrom(text, fallback) {
  if (text === null) return fallback;
  const levels = text.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  return levels.length && levels.every((l) => LEVELS.includes(l)) ? [...new Set(levels)] : fallback;
}

async function loadPolicy() {
  let configured = ["green"];
  try {
    const response = await fetch("config.json");
    if (response.ok) configured = admitFrom((await response.json()).admit.join(","), configured);
  } catch {
    // Offline without a cached copy: green only, the safe default.
  }
  const asked = new URLSearchParams(location.search).get("admit");
  state.admit = admitFrom(asked, configured);
  $("policy").textContent = `Gate policy: admit ${state.admit.join(", ")}` +
    (asked !== null && admitFrom(asked, null) === null ? ` (ignored ?admit=${asked}: levels are green, yellow, red)` : "");
}

// ---- lists -----------------------------------------------------------------------------

async function fetchList(name) {
  // Lists bypass every cache: the device keeps the last good one itself, after checking it.
  try {
    const response = await fetch(`lists/${name}.json`, { cache: "no-store" });
    if (response.status === 404) return { missing: true };
    if (!response.ok) return { unreachable: `HTTP ${response.status}` };
    return { text: await response.text() };
  } catch {
    return { unreachable: "offline" };
  }
}

async function loadPin() {
  const stored = localStorage.getItem(STORE.pin);
  if (stored) {
    state.pin = await importKeyRecord(JSON.parse(stored));
    return;
  }
  const named = await fetchList("list-key");
  if (named.text) {
    state.pin = await importKeyRecord(JSON.parse(named.text));
    localStorage.setItem(STORE.pin, named.text);
  }
}

async function openList(text, parse) {
  const { body, signer } = await openSignedList(text, state.pin);
  if (!state.pin) {
    // First use without a key named by the server: the signer of the first list is pinned.
    state.pin = signer;
    localStorage.setItem(STORE.pin, JSON.stringify(JSON.parse(text).signer));
  }
  return await parse(body);
}

async function loadList(name, parse, label) {
  const storedText = localStorage.getItem(STORE[name]);
  let stored = null;
  if (storedText) {
    try {
      stored = await openList(storedText, parse);
    } catch (error) {
      state.problems.push(`stored ${label} dropped: ${error.message}`);
      localStorage.removeItem(STORE[name]);
    }
  }
  const fetched = await fetchList(name);
  if (fetched.missing) {
    if (name === "revoked") localStorage.removeItem(STORE[name]);
    return name === "revoked" ? null : stored;
  }
  if (fetched.unreachable) {
    if (stored) state.problems.push(`${label}: server unreachable (${fetched.unreachable}), using this device's copy`);
    return stored;
  }
  try {
    const fresh = await openList(fetched.text, parse);
    if (stored && fresh.issuedAt < stored.issuedAt) {
      state.problems.push(`${label} from the server is older than the one on this device: kept this device's`);
      return stored;
    }
    localStorage.setItem(STORE[name], fetched.text);
    return fresh;
  } catch (error) {
    if (!(error instanceof ListError) && !(error instanceof SyntaxError)) throw error;
    state.problems.push(`${label} update refused: ${error.message}` + (stored ? "; using the last good one" : ""));
    return stored;
  }
}

function age(seconds) {
  const s = Math.abs(seconds);
  if (s >= 2 * 86400) return `${Math.floor(s / 86400)} d`;
  if (s >= 2 * 3600) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 60)} min`;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

function staleLists(at) {
  return [["trust list", state.trust], ["revocation list", state.revoked]]
    .filter(([, list]) => list && at >= list.nextUpdate)
    .map(([label, list]) => `${label} ${age(at - list.issuedAt)} old, update due ${age(at - list.nextUpdate)} ago`);
}

function showLists() {
  const at = nowSeconds();
  const element = $("lists");
  const describe = (label, list) =>
    list ? `${label} issued ${age(at - list.issuedAt)} ago` + (at < list.nextUpdate ? `, next update in ${age(list.nextUpdate - at)}` : ", STALE") : `no ${label}`;
  const parts = [describe("trust list", state.trust), describe("revocation list", state.revoked)];
  if (state.revoked) parts[1] += ` (${state.revoked.ids.size} revoked)`;
  if (state.pin) parts.push(`list key ${state.pin.kid}`);
  element.textContent = ["Lists: " + parts.join(" · "), ...state.problems].join(" — ");
  element.dataset.trust = state.trust ? "ok" : state.problems.length ? "refused" : "missing";
  element.dataset.revoked = state.revoked ? "ok" : "missing";
  element.dataset.stale = String(staleLists(at).length > 0);
}

async function loadLists() {
  try {
    await loadPin();
  } catch (error) {
    state.problems.push(`pinned list key unusable: ${error.message}`);
  }
  state.trust = await loadList("trust", parseTrustList, "trust list");
  state.revoked = await loadList("revoked", parseRevocationList, "revocation list");
  showLists();
}

// ---- counts (no codes, no pseudonyms) ------------------------------------------------------

function count(reason) {
  const counts = JSON.parse(localStorage.getItem(STORE.counts) || '{"admitted": 0, "refused": {}}');
  if (reason === "OK") counts.admitted += 1;
  else counts.refused[reason] = (counts.refused[reason] || 0) + 1;
  localStorage.setItem(STORE.counts, JSON.stringify(counts));
  showCounts(counts);
}

function showCounts(counts = JSON.parse(localStorage.getItem(STORE.counts) || '{"admitted": 0, "refused": {}}')) {
  const refused = Object.entries(counts.refused).sort(([a], [b]) => a.localeCompare(b));
  const total = refused.reduce((n, [, k]) => n + k, 0);
  $("counts").textContent = `On this device: ${counts.admitted} admitted · ${total} refused` +
    (refused.length ? ` (${refused.map(([r, k]) => `${r} ${k}`).join(", ")})` : "");
}

// ---- the verdict ---------------------------------------------------------------------------

function show(verdict, at) {
  const admitted = verdict.reason === "OK";
  const shownLevel = claimsVerified(verdict.reason) ? verdict.level : null;
  const stale = staleLists(at);
  const element = $("verdict");
  element.dataset.verdicts = String(Number(element.dataset.verdicts) + 1);
  element.dataset.reason = verdict.reason;
  element.dataset.level = shownLevel ?? "";
  element.dataset.stale = String(stale.length > 0);
  $("verdict-word").textContent = admitted ? "ADMIT" : "REFUSE";
  $("verdict-level").textContent = shownLevel ? `Level ${shownLevel}` : "";
  $("verdict-reason").textContent = PLAIN[verdict.reason] ?? verdict.reason;
  $("verdict-time").textContent = new Date(at * 1000).toLocaleString();
  const staleNote = $("verdict-stale");
  staleNote.hidden = stale.length === 0;
  staleNote.textContent = stale.length ? `Lists stale (${stale.join("; ")}): codes revoked since may pass` : "";
  count(verdict.reason);
  showLists();
}

let queue = Promise.resolve();

function submit(text, startedAt, source) {
  queue = queue.then(async () => {
    const at = nowSeconds();
    const verdict = state.trust
      ? await verifyCode(text, { trust: state.trust, revoked: state.revoked?.ids, admit: state.admit, at })
      : { reason: "NO_TRUST_LIST", level: null };
    show(verdict, at);
    timings[source].push(performance.now() - startedAt);
    requestAnimationFrame(() => timings[`${source}Frame`].push(performance.now() - startedAt));
  });
  return queue;
}

// ---- input -----------------------------------------------------------------------------------

function listenToKeyboard() {
  const input = $("code-input");
  $("code-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value;
    input.value = "";
    submit(text, event.timeStamp, "input");
  });
  // A keyboard-wedge scanner types into whatever has focus: keep it on the field.
  document.addEventListener("click", (event) => {
    if (event.target.tagName !== "BUTTON") input.focus();
  });
  input.focus();
}

async function scanFrames(video, canvas) {
  const context = canvas.getContext("2d", { willReadFrequently: true });
  while (video.srcObject) {
    if (video.readyState >= 2 && video.videoWidth > 0) {
      const startedAt = performance.now();
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      context.drawImage(video, 0, 0);
      const image = context.getImageData(0, 0, canvas.width, canvas.height);
      const results = await readBarcodes(image, { formats: ["QRCode"], maxNumberOfSymbols: 1, tryHarder: true });
      const text = results.find((result) => result.isValid)?.text;
      const repeated = state.lastScan && state.lastScan.text === text && startedAt - state.lastScan.at < RESCAN_MS;
      if (text && !repeated) {
        state.lastScan = { text, at: startedAt };
        await submit(text, startedAt, "camera");
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 60));
  }
}

async function toggleCamera() {
  const video = $("camera");
  const button = $("camera-toggle");
  if (video.srcObject) {
    video.srcObject.getTracks().forEach((track) => track.stop());
    video.srcObject = null;
    $("scanner").hidden = true;
    button.textContent = "Start camera";
    return;
  }
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch (error) {
    $("verdict-reason").textContent = `Camera unavailable (${error.name}): type or wedge-scan codes instead.`;
    return;
  }
  await video.play();
  $("scanner").hidden = false;
  button.textContent = "Stop camera";
  state.lastScan = null;
  scanFrames(video, document.createElement("canvas"));
}

// ---- start -------------------------------------------------------------------------------------

async function start() {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("sw.js").catch((error) => state.problems.push(`offline mode unavailable: ${error.message}`));
  }
  prepareZXingModule({
    overrides: { locateFile: (path, prefix) => (path.endsWith(".wasm") ? new URL(`vendor/zxing-wasm/reader/${path}`, document.baseURI).href : prefix + path) },
    fireImmediately: true,
  }).catch((error) => state.problems.push(`camera decoder unavailable: ${error.message}`));
  listenToKeyboard();
  $("camera-toggle").addEventListener("click", toggleCamera);
  showCounts();
  await loadPolicy();
  await loadLists();
  setInterval(showLists, 60_000);
  document.body.dataset.ready = "true";
  if (new URLSearchParams(location.search).get("camera") === "on") toggleCamera();
}

start();
