// Footer note: which generation of the page this is, with a link to its JSON variant.
// The engine embeds the page data in <script id="__ISR_DATA__"> before </body>; this
// script is deferred, so it runs once that element exists.
(function () {
  "use strict";
  var slot = document.getElementById("isr-data");
  var script = document.getElementById("__ISR_DATA__");
  if (!slot || !script) return;
  var data;
  try {
    data = JSON.parse(script.textContent);
  } catch (e) {
    return;
  }
  if (!data || !data.build_id || !data.generation) return; // SSR and fallback pages have none
  var path = location.pathname === "/" ? "/index" : location.pathname;
  var link = document.createElement("a");
  link.href = "/_isr/data/" + encodeURIComponent(data.build_id) + path + ".json";
  link.textContent = "JSON variant";
  slot.append("Generation ");
  var code = document.createElement("code");
  code.textContent = data.generation;
  slot.append(code, " of ", data.page || path, " (", link, ").");
})();
