// The linking page: follows /ws/session/<id> (authenticated by the admin's session cookie), shows the
// QR as the server renders it, the status as it changes, and a pairing code on request.
// Every sentence comes from the page (#link-texts), translated by Django.
(function () {
  "use strict";
  var root = document.getElementById("link");
  var texts = JSON.parse(document.getElementById("link-texts").textContent);
  var statusEl = document.getElementById("link-status");
  var qrBox = document.getElementById("link-qr-box");
  var qrImg = document.getElementById("link-qr");
  var retry = document.getElementById("link-retry");
  var pairingForm = document.getElementById("link-pairing-form");
  var pairingResult = document.getElementById("link-pairing-result");
  var pairingSection = pairingForm.closest("section");
  var socket = null;
  var qrCount = 0;

  function fill(template, detail) {
    return template.replace("%(detail)s", detail);
  }

  function show(text, state) {
    statusEl.textContent = text;
    statusEl.dataset.state = state;
    root.dataset.state = state;
  }

  function fail(text) {
    qrBox.hidden = true;
    show(text, "error");
    retry.hidden = false;
  }

  function succeed(text) {
    qrBox.hidden = true;
    retry.hidden = true;
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
        show(texts.initializing, "busy");
      } else if (message.data === "connected") {
        ws.done = true;
        succeed(texts.connected);
      } else if (message.data === "already_connected") {
        ws.done = true;
        succeed(texts.already_connected);
      } else if (message.data === "disconnected") {
        fail(texts.reasons[message.reason] || texts.disconnected);
      }
    } else if (message.event === "error") {
      fail(fill(texts.error, message.data));
    }
  }

  function open() {
    retry.hidden = true;
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
