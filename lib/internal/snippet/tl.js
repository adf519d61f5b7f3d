// tl.js: tl's browser snippet, served by tl-relay at /v1/tl.js. A page
// includes it with one tag:
//
//   <script src="https://relay.example/v1/tl.js" data-tenant="acme"
//     data-key="tlk_..." defer></script>
//
// and its events reach the tenant (tl-protocol(7)): a pageview on load and on
// every history navigation of a single-page app, a click for each element
// marked data-tl-click="name" (its metadata {"name": name}), and whatever the
// page sends with tl.track(type, path, metadata). Events are batched and sent
// with navigator.sendBeacon (text/plain NDJSON, the public ingest key in
// ?key=) when the page is hidden or left, when the batch is large, or after a
// short delay. With data-respect-dnt on the tag, a browser that asks for Do
// Not Track or Global Privacy Control sends nothing.
//
// This is the readable source; tl.min.js, what the relay serves, is esbuild's
// minified output of it (go generate ./lib/internal/snippet rebuilds it).
(function (win, doc, nav) {
  var script = doc.currentScript;
  var data = script && script.dataset;
  if (!data || !data.tenant || !data.key || win.tl) {
    return;
  }
  // The relay is wherever the script came from: its URL up to /v1/tl.js.
  var url =
    script.src.replace(/\/v1\/tl\.js.*$/, "") +
    "/v1/tenants/" +
    encodeURIComponent(data.tenant) +
    "/events?key=" +
    encodeURIComponent(data.key);
  var off =
    data.respectDnt != null &&
    (nav.doNotTrack == "1" || win.doNotTrack == "1" || !!nav.globalPrivacyControl);
  // The batch, its size in characters, its timer, and the last path a
  // pageview was sent for.
  var queue = [];
  var size = 0;
  var timer = 0;
  var last;
  // A batch of MAX_BATCH events or MAX_SIZE characters is sent at once:
  // well under the relay's --ingest-burst (100 events by default,
  // TL-Max-Batch) and the 64 KiB a beacon may carry. DELAY is how long
  // (ms) an event waits at most.
  var MAX_BATCH = 20;
  var MAX_SIZE = 16384;
  var DELAY = 2000;

  function flush() {
    clearTimeout(timer);
    timer = 0;
    if (!queue.length) {
      return;
    }
    var body = queue.join("\n");
    queue = [];
    size = 0;
    // A beacon outlives the page; when the browser will not queue one
    // (over its size quota), or has none, a keepalive fetch does the same.
    if (!(nav.sendBeacon && nav.sendBeacon(url, body))) {
      fetch(url, { method: "POST", body: body, keepalive: true, mode: "no-cors" }).catch(function () {});
    }
  }

  // track queues one event (tl-protocol(7)): type is pageview, click or
  // custom, path defaults to the page's, and metadata's values are sent as
  // strings (at most 64 keys). It returns whether the event was queued.
  function track(type, path, metadata) {
    if (off || !/^(pageview|click|custom)$/.test(type)) {
      return false;
    }
    var meta = {};
    var n = 0;
    for (var k in metadata) {
      if (n++ < 64 && metadata[k] != null) {
        meta[k] = String(metadata[k]);
      }
    }
    var line = JSON.stringify({
      type: type,
      path: String(path || location.pathname).slice(0, 2048),
      timestamp: Date.now(),
      metadata: meta,
    });
    queue.push(line);
    size += line.length;
    if (queue.length >= MAX_BATCH || size >= MAX_SIZE) {
      flush();
    } else if (!timer) {
      timer = setTimeout(flush, DELAY);
    }
    return true;
  }

  // pageview sends one for the page's path unless it was the last one
  // sent (a replaceState that only changes the state or the query).
  function pageview() {
    if (location.pathname != last) {
      last = location.pathname;
      track("pageview");
    }
  }

  // Single-page apps navigate with the History API: wrap its two
  // methods, and listen to the back and forward buttons.
  ["pushState", "replaceState"].forEach(function (name) {
    var orig = history[name];
    history[name] = function () {
      var r = orig.apply(this, arguments);
      pageview();
      return r;
    };
  });
  win.addEventListener("popstate", pageview);
  // One listener for every marked element, present or added later.
  doc.addEventListener(
    "click",
    function (e) {
      var el = e.target.closest && e.target.closest("[data-tl-click]");
      if (el) {
        track("click", 0, { name: el.getAttribute("data-tl-click") });
      }
    },
    true
  );
  // The page may never come back from hidden (a closed tab, a killed app):
  // send now. pagehide covers the browsers that skip visibilitychange.
  doc.addEventListener("visibilitychange", function () {
    if (doc.visibilityState == "hidden") {
      flush();
    }
  });
  win.addEventListener("pagehide", flush);
  win.tl = { track: track, flush: flush };
  pageview();
})(window, document, navigator);
