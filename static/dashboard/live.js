// Live updates for the dashboard. htmx's ws extension holds the WebSocket, reconnects
// with backoff and swaps the out-of-band fragments; this script adds what it lacks:
// hidden tabs receive nothing, a page whose WebSocket never opens falls back to polling,
// selected rows survive a swap, and relative times stay fresh.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var label = document.getElementById("live-state");
  var socket = null, healthy = false, failures = 0, pollTimer = null;
  var POLL_AFTER_FAILURES = 3;
  var RETRIED = [1006, 1011, 1012, 1013];

  function say(text) { if (label) label.textContent = "Live updates: " + text; }
  function visible() { return document.visibilityState !== "hidden"; }

  function pollOnce() {
    if (!visible()) return;
    htmx.ajax("GET", live.dataset.poll, { target: live, swap: "none" });
  }
  function startPolling() {
    if (pollTimer) return;
    var every = Math.max(2000, 1000 / Math.max(parseFloat(live.dataset.fps) || 1, 0.2));
    pollTimer = setInterval(pollOnce, every);
    say("polling every " + Math.round(every / 1000) + " s (no WebSocket)");
    pollOnce();
  }
  function stopPolling() { if (pollTimer) { clearInterval(pollTimer); pollTimer = null; } }

  if (live) {
    if (!("WebSocket" in window)) { startPolling(); }
    // A connection counts as working once its first frame (the re-sync) arrives: a proxy
    // may accept the upgrade and still drop everything.
    live.addEventListener("htmx:wsOpen", function (e) {
      socket = e.detail.socketWrapper;
      socket.send(JSON.stringify({ visible: visible() }));
    });
    live.addEventListener("htmx:wsAfterMessage", function () {
      if (healthy) return;
      healthy = true; failures = 0;
      stopPolling(); say("on");
    });
    live.addEventListener("htmx:wsClose", function (e) {
      var code = e.detail.event.code;
      socket = null;
      if (!healthy) failures += 1;
      healthy = false;
      // The extension retries only these codes; for any other it has given up.
      var retrying = RETRIED.indexOf(code) >= 0;
      if (!retrying || failures >= POLL_AFTER_FAILURES) startPolling();
      else if (!pollTimer) say("reconnecting…");
    });
    document.addEventListener("visibilitychange", function () {
      if (socket) socket.send(JSON.stringify({ visible: visible() }));
      if (pollTimer && visible()) pollOnce();
    });
  }

  // Keep checked boxes checked when a live fragment replaces the table they are in.
  var checked = [];
  document.body.addEventListener("htmx:oobBeforeSwap", function () {
    checked = Array.prototype.map.call(document.querySelectorAll("input[name=ids]:checked"), function (b) { return b.value; });
  });
  document.body.addEventListener("htmx:oobAfterSwap", function () {
    checked.forEach(function (id) {
      var box = document.querySelector('input[name=ids][value="' + CSS.escape(id) + '"]');
      if (box) box.checked = true;
    });
    refreshTimes();
  });

  function relative(ms) {
    var s = Math.round((Date.now() - ms) / 1000), future = s < 0;
    s = Math.abs(s);
    if (s < 5) return "just now";
    var units = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]];
    for (var i = 0; i < units.length; i++) {
      if (s >= units[i][1]) {
        var text = Math.floor(s / units[i][1]) + " " + units[i][0];
        return future ? "in " + text : text + " ago";
      }
    }
    return "just now";
  }
  function refreshTimes() {
    document.querySelectorAll("time[datetime]").forEach(function (t) {
      var ms = Date.parse(t.getAttribute("datetime"));
      if (!isNaN(ms)) t.textContent = relative(ms);
    });
  }
  setInterval(refreshTimes, 5000);
})();
