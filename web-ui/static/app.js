// paas dashboard: the one script (served from /static/, no inline code, no external
// requests). Config reveal, live logs over EventSource, CPU and memory charts on <canvas>.
"use strict";

(function () {
  function revealButtons() {
    document.querySelectorAll("button.reveal").forEach(function (b) {
      b.addEventListener("click", function () {
        var cell = b.parentNode;
        var secret = cell.querySelector(".secret");
        var mask = cell.querySelector(".masked");
        var show = secret.hidden;
        secret.hidden = !show;
        mask.hidden = show;
        b.textContent = show ? "Hide" : "Reveal";
      });
    });
  }

  var MAX_LOG_LINES = 500;

  function liveLog() {
    var pre = document.getElementById("live-log");
    var state = document.getElementById("live-log-state");
    if (!pre || !window.EventSource) return;
    var src = new EventSource(pre.getAttribute("data-src"));
    src.onopen = function () { state.textContent = "Live: new lines appear as they come."; };
    src.onerror = function () { state.textContent = "Disconnected; reconnecting…"; };
    src.onmessage = function (e) {
      var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      var line = document.createElement("span");
      line.className = "line";
      line.textContent = e.data + "\n";
      pre.appendChild(line);
      while (pre.childNodes.length > MAX_LOG_LINES) pre.removeChild(pre.firstChild);
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    };
  }

  var COLORS = ["#3450c7", "#1a7f37", "#c0262d", "#9a6700", "#7a3bc7", "#0a7a8a"];

  function fmtBytes(b) {
    var u = ["B", "KiB", "MiB", "GiB"], i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (b >= 100 || i === 0 ? b.toFixed(0) : b.toFixed(1)) + " " + u[i];
  }

  // One line chart: series = [{label, points: [[t, v], ...]}].
  function drawChart(canvas, title, series, fmt) {
    var ratio = window.devicePixelRatio || 1;
    var w = canvas.clientWidth || 300, h = canvas.clientHeight || 140;
    canvas.width = w * ratio; canvas.height = h * ratio;
    var g = canvas.getContext("2d");
    g.scale(ratio, ratio);
    g.clearRect(0, 0, w, h);
    var t0 = Infinity, t1 = -Infinity, vmax = 0;
    series.forEach(function (s) {
      s.points.forEach(function (p) {
        t0 = Math.min(t0, p[0]); t1 = Math.max(t1, p[0]); vmax = Math.max(vmax, p[1]);
      });
    });
    if (vmax <= 0) vmax = 1;
    if (t1 <= t0) t1 = t0 + 1;
    var left = 4, top = 18, bottom = h - 4, right = w - 4;
    g.font = "12px system-ui, sans-serif";
    g.fillStyle = "#5c6577";
    g.fillText(title + " (max " + fmt(vmax) + ")", left, 12);
    g.strokeStyle = "#dde1e8";
    g.beginPath(); g.moveTo(left, bottom); g.lineTo(right, bottom); g.stroke();
    series.forEach(function (s, i) {
      g.strokeStyle = COLORS[i % COLORS.length];
      g.lineWidth = 1.5;
      g.beginPath();
      s.points.forEach(function (p, j) {
        var x = left + (p[0] - t0) / (t1 - t0) * (right - left);
        var y = bottom - p[1] / vmax * (bottom - top);
        if (j === 0) g.moveTo(x, y); else g.lineTo(x, y);
      });
      g.stroke();
    });
  }

  function renderCharts(box, data) {
    var byType = {};
    data.forEach(function (j) {
      (byType[j.process_type] = byType[j.process_type] || []).push(j);
    });
    var types = Object.keys(byType).sort();
    var empty = document.getElementById("charts-empty");
    if (empty) empty.hidden = types.length > 0;
    types.forEach(function (t) {
      var id = "chart-" + t.replace(/[^a-z0-9_-]/gi, "_");
      var card = document.getElementById(id);
      if (!card) {
        card = document.createElement("div");
        card.className = "card chart";
        card.id = id;
        var h = document.createElement("h3");
        h.textContent = t;
        card.appendChild(h);
        ["cpu", "mem"].forEach(function (k) {
          var c = document.createElement("canvas");
          c.className = "chart-" + k;
          card.appendChild(c);
        });
        box.appendChild(card);
      }
      var cpu = [], mem = [];
      byType[t].forEach(function (j) {
        var label = j.job_id.slice(0, 8);
        cpu.push({ label: label, points: j.at_ms.map(function (at, i) { return [at, j.cpu_percent[i]]; }) });
        mem.push({ label: label, points: j.at_ms.map(function (at, i) { return [at, j.memory_bytes[i]]; }) });
      });
      drawChart(card.querySelector(".chart-cpu"), "CPU %", cpu, function (v) { return v.toFixed(1) + "%"; });
      drawChart(card.querySelector(".chart-mem"), "Memory", mem, fmtBytes);
    });
  }

  function charts() {
    var box = document.getElementById("charts");
    if (!box || !window.fetch) return;
    var url = box.getAttribute("data-src");
    function load() {
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (data) { renderCharts(box, data); })
        .catch(function () {});
    }
    load();
    setInterval(load, 5000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    revealButtons();
    liveLog();
    charts();
  });
})();
