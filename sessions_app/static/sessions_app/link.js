// The linking page: follows /ws/session/<id> (authenticated by the admin's session cookie), shows the
// QR as the server renders it, the status as it changes (a disconnect with its reason, its cause and a
// countdown to the next attempt), and a pairing code on request. "Reintentar" opens a new socket, which
// makes the server try again now. Every sentence comes from the page (#link-texts), translated by Django.
(function () {
  "use strict";
  var root = document.getElementById("link");
  var texts = JSON.parse(document.getElementById("link-texts").textContent);
  var statusEl = document.getElementById("link-status");
  var qrBox = document.getElementById("link-qr-box");
  var qrImg = document.getElementById("link-qr");
  var retry = document.getElementById("link-retry");
  var errorEl = document.getElementById("link-error");
  var retryInEl = document.getElementById("link-retry-in");
  var pairingForm = document.getElementById("link-pairing-form");
  var pairingResult = document.getElementById("link-pairing-result");
  var pairingSection = pairingForm.closest("section");
  var socket = null;
  var qrCount = 0;
  var countdown = null;  // the interval that counts down to the next attempt
  var silence = null;  // the timer that notices "initializing" going on with no news
  var SILENCE_MS = 30000;

  function fill(template, detail) {
    return template.replace("%(detail)s", detail);
  }

  function fillAll(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) { return String(values[name]); });
  }

  function clearNews() {
    if (countdown !== null) clearInterval(countdown);
    if (silence !== null) clearTimeout(silence);
    countdown = silence = null;
    errorEl.hidden = retryInEl.hidden = true;
    errorEl.textContent = retryInEl.textContent = "";
  }

  function show(text, state) {
    clearNews();
    statusEl.textContent = text;
    statusEl.dataset.state = state;
    root.dataset.state = state;
    retry.hidden = state !== "error";
  }

  function retryText(seconds) {
    if (seconds < 120) return fillAll(texts.retry_in_seconds, { seconds: seconds });
    return fillAll(texts.retry_in_minutes, { minutes: Math.floor(seconds / 60), seconds: seconds % 60 });
  }

  function countDown(seconds) {
    var deadline = Date.now() + seconds * 1000;
    function tick() {
      var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      retryInEl.textContent = left > 0 ? retryText(left) + " " + texts.retry_hint : texts.retry_now;
      if (left <= 0 && countdown !== null) {
        clearInterval(countdown);
        countdown = null;
        silence = setTimeout(function () {  // the attempt was due and nothing came: say so
          retryInEl.textContent = texts.still_initializing;
        }, SILENCE_MS);
      }
    }
    retryInEl.hidden = false;
    tick();
    countdown = setInterval(tick, 1000);
  }

  function fail(text) {
    qrBox.hidden = true;
    show(text, "error");
  }

  function disconnected(message) {
    var why = texts.reasons[message.reason];
    fail(why ? texts.disconnected + " " + why : texts.disconnected);
    if (typeof message.error === "string" && message.error) {
      errorEl.textContent = fill(texts.cause, message.error);
      errorEl.hidden = false;
    }
    if (typeof message.retryInSeconds === "number") countDown(message.retryInSeconds);
  }

  function initializing() {
    show(texts.initializing, "busy");
    silence = setTimeout(function () {  // never "Iniciando…" for ever without a word
      errorEl.textContent = texts.still_initializing;
      errorEl.hidden = false;
      retry.hidden = false;
    }, SILENCE_MS);
  }

  function succeed(text) {
    qrBox.hidden = true;
    pairingSection.hidden = true;  // linked: a code is of no use any more
    show(text, "ok");
  }

  function onEvent(message, ws) {
    if (message.event === "qr") {
      qrCount += 1;
      qrImg.src = root.dataset.qrUrl + "?n=" + qrCount;
      qrBox.hidden = false;
      show(texts.qr, "qr");
    } else if (message.event === "status") {
      if (message.data === "initializing") {
        initializing();
      } else if (message.data === "connected") {
        ws.done = true;
        succeed(texts.connected);
      } else if (message.data === "already_connected") {
        ws.done = true;
        succeed(texts.already_connected);
      } else if (message.data === "disconnected") {
        disconnected(message);
      }
    } else if (message.event === "error") {
      fail(fill(texts.error, message.data));
    }
  }

  function open() {
    pairingResult.textContent = "";
    qrBox.hidden = true;
    show(texts.connecting, "busy");
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + window.location.host + root.dataset.wsPath);
    ws.done = false;
    ws.opened = false;
    socket = ws;
    ws.onopen = function () { ws.opened = true; };
    ws.onmessage = function (frame) {
      if (ws === socket) onEvent(JSON.parse(frame.data), ws);
    };
    ws.onclose = function () {
      // A socket replaced by "Reintentar", or closed by the server after success, says nothing more.
      if (ws !== socket || ws.done) return;
      fail(ws.opened ? texts.socket_closed : texts.refused);
    };
  }

  retry.addEventListener("click", function () {
    var old = socket;
    socket = null;
    if (old) old.close();
    open();
  });

  pairingForm.addEventListener("submit", function (submitEvent) {
    submitEvent.preventDefault();
    pairingResult.textContent = texts.pairing_waiting;
    fetch(pairingForm.action, {
      method: "POST",
      body: new FormData(pairingForm),
      credentials: "same-origin",
      headers: { "Accept": "application/json" },
    })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (answer) {
        pairingResult.textContent = "";
        if (answer.ok) {
          pairingResult.appendChild(document.createTextNode(texts.pairing_code));
          var code = document.createElement("strong");
          code.id = "link-pairing-code";
          code.textContent = answer.body.code;
          pairingResult.appendChild(code);
        } else {
          pairingResult.textContent = fill(texts.pairing_failed, answer.body.message || "");
        }
      })
      .catch(function () {
        pairingResult.textContent = fill(texts.pairing_failed, texts.socket_closed);
      });
  });

  open();
})();
