// Live updates for the dashboard. htmx's ws extension holds the WebSocket, reconnects
// with backoff and swaps the out-of-band fragments; this script adds what it lacks:
// hidden tabs receive nothing, a page whose WebSocket never opens falls back to polling,
// selected rows and opened details survive a swap, a select-all box, relative times stay fresh and absolute
// times are shown in the browser's time zone.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var label = document.getElementById("live-state");
  var socket = null, healthy = false, failures = 0, pollTimer = null;
  var POLL_AFTER_FAILURES = 3;
  var RETRIED = [1006, 1011, 1012, 1013];
  var REFUSED = 4403;

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
      if (code === REFUSED) {  // not logged in (any more): polling would be refused too
        say("off: your session has ended, reload the page to log in again");
        return;
      }
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

  // Keep checked boxes checked, and opened <details> open, when a live fragment replaces them.
  var checked = [], opened = [];
  document.body.addEventListener("htmx:oobBeforeSwap", function () {
    checked = Array.prototype.map.call(document.querySelectorAll("input[name=ids]:checked"), function (b) { return b.value; });
    opened = Array.prototype.map.call(document.querySelectorAll("details[open][id]"), function (d) { return d.id; });
  });
  document.body.addEventListener("htmx:oobAfterSwap", function () {
    checked.forEach(function (id) {
      var box = document.querySelector('input[name=ids][value="' + CSS.escape(id) + '"]');
      if (box) box.checked = true;
    });
    opened.forEach(function (id) {
      var details = document.getElementById(id);
      if (details) details.open = true;
    });
    syncSelectAll();
    refreshTimes();
  });

  // The select-all box of each table (hidden without JavaScript, where it could do nothing).
  function boxesOf(all) {
    var table = all.closest("table");
    return table ? table.querySelectorAll("input[name=ids]") : [];
  }
  function syncSelectAll() {
    document.querySelectorAll("input[data-select-all]").forEach(function (all) {
      var boxes = boxesOf(all), on = 0;
      boxes.forEach(function (b) { if (b.checked) on += 1; });
      all.hidden = false;
      all.checked = boxes.length > 0 && on === boxes.length;
      all.indeterminate = on > 0 && on < boxes.length;
    });
  }
  document.body.addEventListener("change", function (e) {
    var target = e.target;
    if (target.matches("input[data-select-all]")) {
      boxesOf(target).forEach(function (b) { b.checked = target.checked; });
    }
    if (target.matches("input[data-select-all], input[name=ids]")) syncSelectAll();
  });
  syncSelectAll();

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
  function two(n) { return (n < 10 ? "0" : "") + n; }
  // ISO 8601 in the browser's time zone, with its offset: 2026-11-29 09:31:02+01:00.
  function localIso(ms) {
    var d = new Date(ms), offset = -d.getTimezoneOffset(), sign = offset < 0 ? "-" : "+";
    offset = Math.abs(offset);
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " +
      two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds()) +
      sign + two(Math.floor(offset / 60)) + ":" + two(offset % 60);
  }
  var zone = (window.Intl && Intl.DateTimeFormat().resolvedOptions().timeZone) || "";
  function refreshTimes() {
    document.querySelectorAll("time[datetime]").forEach(function (t) {
      var ms = Date.parse(t.getAttribute("datetime"));
      if (!isNaN(ms)) t.textContent = relative(ms);
    });
    document.querySelectorAll("[data-local]").forEach(function (el) {
      var ms = parseInt(el.getAttribute("data-local"), 10);
      if (!isNaN(ms)) { el.textContent = localIso(ms); if (zone) el.title = zone; }
    });
    // Chart time axes: HH:MM and the zone's name.
    document.querySelectorAll("[data-local-hm]").forEach(function (el) {
      var d = new Date(parseInt(el.getAttribute("data-local-hm"), 10));
      if (!isNaN(d)) el.textContent = two(d.getHours()) + ":" + two(d.getMinutes());
    });
    document.querySelectorAll("[data-zone]").forEach(function (el) { el.textContent = zone || "local time"; });
  }
  refreshTimes();
  setInterval(refreshTimes, 5000);
})();
