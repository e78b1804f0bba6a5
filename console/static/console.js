// FlowFabric console: keeps the countdowns and ages moving. The pages are
// complete without it. It reads only data attributes the server wrote
// (numbers), and writes text (a text node's data), never HTML.
(function () {
  'use strict';
  var serverNow = Number(document.body.getAttribute('data-now-ms'));
  // The server's clock at load minus ours: countdowns follow the server.
  var skew = serverNow > 0 ? serverNow - Date.now() : 0;

  // human writes a duration with its two largest units, as the server does:
  // "3d 4h", "2h 5m", "4m 10s", "12s".
  function human(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var units = [[86400, 'd'], [3600, 'h'], [60, 'm'], [1, 's']];
    var parts = [];
    for (var i = 0; i < units.length && parts.length < 2; i++) {
      var q = Math.floor(s / units[i][0]);
      if (q === 0 && parts.length === 0) continue;
      parts.push(q + units[i][1]);
      s -= q * units[i][0];
    }
    return parts.length ? parts.join(' ') : '0s';
  }

  // put changes an element's text in place (its text node's data), and
  // only when it differs: no node is added or removed.
  function put(el, text) {
    var n = el.firstChild;
    if (n && n.nodeType === 3 && !n.nextSibling) {
      if (n.data !== text) n.data = text;
    } else {
      el.textContent = text;
    }
  }

  function tick() {
    var now = Date.now() + skew;
    var i, el, d;
    var deadlines = document.querySelectorAll('[data-deadline-ms]');
    for (i = 0; i < deadlines.length; i++) {
      el = deadlines[i];
      d = Number(el.getAttribute('data-deadline-ms')) - now;
      put(el, d >= 0 ? 'in ' + human(d) : human(d) + ' ago');
      if (el.classList.contains('past') !== (d < 0)) el.classList.toggle('past', d < 0);
    }
    var ages = document.querySelectorAll('[data-since-ms]');
    for (i = 0; i < ages.length; i++) {
      el = ages[i];
      put(el, human(now - Number(el.getAttribute('data-since-ms'))));
    }
  }

  tick();
  window.setInterval(tick, 1000);
})();
