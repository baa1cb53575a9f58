// The console's verify page: follows a running verification by polling its
// progress JSON, and reloads the page (which then shows the verdict) once it
// ended. Plain DOM, no framework; every text from the node goes in as text.
(function () {
  "use strict";
  var box = document.getElementById("progress");
  if (!box || box.dataset.ended === "true") return;
  var d = box.dataset;
  function size(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : (Math.round(n * 10) / 10).toString()) + " " + units[i];
  }
  function set(id, text) {
    var e = document.getElementById(id);
    if (e) e.textContent = text;
  }
  function bar(id, value, max) {
    var e = document.getElementById(id);
    if (e) { e.max = Math.max(max, 1); e.value = value; }
  }
  function finding(f) {
    var li = document.createElement("li");
    if (f.seq !== null) li.dataset.seq = f.seq;
    var at = document.createElement("span");
    at.className = "at";
    at.textContent = f.seq !== null ? d.entry + f.seq : d.noEntry;
    li.appendChild(at);
    if (f.case_no) {
      li.appendChild(document.createTextNode(" · " + d["case"]));
      var code = document.createElement("code");
      code.textContent = f.case_no;
      li.appendChild(code);
      li.appendChild(document.createTextNode(" ("));
      var q = encodeURIComponent(f.case_no);
      var trace = document.createElement("a");
      trace.className = "trace";
      trace.href = "/trace?case=" + q;
      trace.textContent = d.trace;
      li.appendChild(trace);
      li.appendChild(document.createTextNode(" · "));
      var bundle = document.createElement("a");
      bundle.className = "bundle";
      bundle.href = "/bundle?case=" + q;
      bundle.textContent = d.bundle;
      li.appendChild(bundle);
      li.appendChild(document.createTextNode(")"));
    }
    li.appendChild(document.createElement("br"));
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = f.words || f.text;
    li.appendChild(text);
    return li;
  }
  function show(p) {
    set("phase", d[p.phase] || p.phase);
    set("checked", String(p.checked));
    set("total", String(p.total));
    bar("entries", p.checked, p.total);
    set("rehashed", size(p.rehashed));
    set("material-bytes", size(p.material_bytes));
    bar("rehash", p.rehashed, p.material_bytes);
    set("problem-count", String(p.problem_count));
    var list = document.getElementById("problems");
    if (list && list.children.length !== p.problems.length) {
      list.textContent = "";
      p.problems.forEach(function (f) { list.appendChild(finding(f)); });
      var none = document.getElementById("no-problems");
      if (none && p.problems.length) none.hidden = true;
    }
  }
  function poll() {
    fetch(d.url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error(String(r.status));
        return r.json();
      })
      .then(function (p) {
        show(p);
        if (p.ended) { window.location.reload(); return; }
        setTimeout(poll, 300);
      })
      // A lost connection to the console: try again a little later.
      .catch(function () { setTimeout(poll, 2000); });
  }
  poll();
})();
