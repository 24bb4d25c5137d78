// ktg report: the page's behaviour. No library, nothing fetched: the data is the JSON in
// <script id="ktg-data">, the pictures are inline SVG.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("ktg-data").textContent);
  var RAMP = [[69, 117, 180], [253, 174, 97], [215, 48, 39]]; // share of loss 0, 0.5, 1

  function ramp(share) {
    var s = Math.max(0, Math.min(1, share)) * 2;
    var i = Math.min(1, Math.floor(s));
    var f = s - i;
    var c = RAMP[i].map(function (v, k) { return Math.round(v + (RAMP[i + 1][k] - v) * f); });
    return "rgb(" + c.join(",") + ")";
  }

  function fmt(v, digits) {
    if (v === null || v === undefined) { return "–"; }
    return Number(v).toFixed(digits === undefined ? 3 : digits);
  }

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
  }

  // --- a run: edges restyled per epoch -------------------------------------------------
  function edgeNumbers(run, i) {
    var totals = {};
    run.edges.forEach(function (e) {
      var t = e.term[i];
      if (t !== null && t !== undefined) { totals[e.receiver] = (totals[e.receiver] || 0) + t; }
    });
    return run.edges.map(function (e) {
      var t = e.term[i], total = totals[e.receiver];
      var share = (t === null || t === undefined || !total) ? null : t / total;
      return { edge: e, weight: e.weight[i], loss: e.value[i], term: t, share: share };
    });
  }

  function topWeight(run) {
    var top = 1;
    run.edges.forEach(function (e) {
      e.weight.forEach(function (w) { if (w !== null && w > top) { top = w; } });
    });
    return top;
  }

  function styleEdge(g, n, top) {
    var w = n.weight, on = w === null || w === undefined ? null : Math.min(w / top, 1);
    var width = on === null ? 1 : 0.6 + 5 * on;
    // a feature edge is a double line (render/graph.py): each line half the pen, the gap shows
    if (g.classList.contains("feature")) { width = 0.3 + width / 2; }
    var color = n.share === null ? "#8a8a8a" : ramp(n.share);
    g.style.opacity = on === null ? 0.35 : (w === 0 ? 0.12 : 0.35 + 0.65 * on);
    g.querySelectorAll("path").forEach(function (p) {
      if (p.getAttribute("stroke") === "transparent") { return; }
      p.style.stroke = color;
      p.style.strokeWidth = width + "px";
    });
    g.querySelectorAll("polygon").forEach(function (p) {
      p.style.stroke = color;
      p.style.fill = color;
    });
    g.setAttribute("data-weight", w === null || w === undefined ? "" : String(w));
    g.setAttribute("data-term", n.term === null || n.term === undefined ? "" : String(n.term));
    var text = n.edge.key + "\ngate " + n.edge.gate + ": weight " + fmt(w) + "\nloss " +
      n.edge.loss + ": " + fmt(n.loss) + "\nterm " + fmt(n.term) +
      (n.share === null ? "" : " (" + fmt(100 * n.share, 1) + "% of " + n.edge.receiver + "'s loss)");
    var title = g.querySelector("title");
    if (title) { title.textContent = text; }
    g.setAttribute("data-tip", text);
  }

  function nodeLabel(svg, g, text) {
    // drawn after everything else (in the graph's own group, where the node's box is
    // measured): the arrows leaving the node pass under it, not over it
    var label = document.getElementById(g.id + ":acc");
    if (!label) {
      var box = g.getBBox(), ns = svg.namespaceURI;
      var bg = document.createElementNS(ns, "rect");
      label = document.createElementNS(ns, "text");
      label.setAttribute("class", "acc");
      label.setAttribute("id", g.id + ":acc");
      label.setAttribute("x", box.x + box.width / 2);
      label.setAttribute("y", box.y + box.height + 9); // a badge below the node, on its border
      label.setAttribute("text-anchor", "middle");
      bg.setAttribute("class", "acc-bg");
      g.parentNode.appendChild(bg);
      g.parentNode.appendChild(label);
    }
    label.textContent = text;
    var b = label.getBBox(), rect = label.previousSibling;
    rect.setAttribute("x", b.x - 3); rect.setAttribute("y", b.y - 1);
    rect.setAttribute("width", b.width + 6); rect.setAttribute("height", b.height + 2);
  }

  function roomBelow(svg) {
    // the badges of the lowest nodes reach below the picture: give it room once
    if (!svg || svg.getAttribute("data-room")) { return; }
    var v = svg.viewBox.baseVal;
    svg.setAttribute("viewBox", [v.x, v.y, v.width, v.height + 10].join(" "));
    svg.setAttribute("data-room", "1");
  }

  function showRun(run, i, root, prefix) {
    var top = topWeight(run), numbers = edgeNumbers(run, i);
    numbers.forEach(function (n) {
      var g = document.getElementById(prefix + "edge:" + n.edge.key);
      if (g) { styleEdge(g, n, top); }
    });
    Object.keys(run.nodes).forEach(function (name) {
      var g = document.getElementById(prefix + "node:" + name);
      var v = run.nodes[name].val_top1[i];
      if (g && g.ownerSVGElement) { roomBelow(g.ownerSVGElement); nodeLabel(g.ownerSVGElement, g, run.split + " " + (v === null ? "–" : fmt(v, 1) + "%")); }
    });
    var epoch = run.epochs[i] + 1;
    root.querySelectorAll(".epoch-text").forEach(function (el) {
      el.textContent = "epoch " + epoch + " of " + run.total_epochs;
    });
    root.querySelectorAll(".epoch-mark").forEach(function (m) {
      var xs = m.getAttribute("data-xs").split(" ");
      m.setAttribute("x1", xs[i]); m.setAttribute("x2", xs[i]);
    });
    fillTables(run, i, numbers);
  }

  function fillTables(run, i, numbers) {
    var edges = document.querySelector("#edge-table tbody");
    if (edges) {
      edges.textContent = "";
      numbers.forEach(function (n) {
        var tr = document.createElement("tr");
        tr.setAttribute("data-edge", n.edge.key);
        [n.edge.key, n.edge.gate, fmt(n.weight), fmt(n.loss), fmt(n.term),
         n.share === null ? "–" : fmt(100 * n.share, 1) + "%"].forEach(function (t) { cell(tr, t); });
        edges.appendChild(tr);
      });
    }
    var nodes = document.querySelector("#node-table tbody");
    if (nodes) {
      nodes.textContent = "";
      Object.keys(run.nodes).forEach(function (name) {
        var s = run.nodes[name], tr = document.createElement("tr");
        tr.setAttribute("data-node", name);
        [name, fmt(s.train_top1[i], 2), fmt(s.val_top1[i], 2), fmt(s.train_loss[i]),
         fmt(s.val_loss[i]), fmt(s.lr[i], 4)].forEach(function (t) { cell(tr, t); });
        nodes.appendChild(tr);
      });
    }
  }

  function wireRun(run) {
    var slider = document.getElementById("epoch"), play = document.getElementById("play");
    if (!slider || !run.epochs.length) { return; }
    var start = /epoch=(\d+)/.exec(location.hash);
    if (start) {
      var at = run.epochs.indexOf(Number(start[1]) - 1);
      if (at >= 0) { slider.value = at; }
    }
    var show = function () { showRun(run, Number(slider.value), document, ""); };
    slider.addEventListener("input", show);
    slider.addEventListener("change", function () {
      history.replaceState(null, "", "#epoch=" + (run.epochs[Number(slider.value)] + 1));
    });
    var timer = null;
    play.addEventListener("click", function () {
      if (timer) { clearInterval(timer); timer = null; play.textContent = "▶ play"; return; }
      if (Number(slider.value) >= run.epochs.length - 1) { slider.value = 0; show(); }
      play.textContent = "❚❚ pause";
      timer = setInterval(function () {
        var next = Number(slider.value) + 1;
        if (next >= run.epochs.length) {
          clearInterval(timer); timer = null; play.textContent = "▶ play"; return;
        }
        slider.value = next; show();
      }, 450);
    });
    show();
  }

  // --- every page: sortable tables, a tooltip, embedded run pages ----------------------
  function sortable(tableEl) {
    tableEl.querySelectorAll("th").forEach(function (th, col) {
      th.addEventListener("click", function () {
        var body = tableEl.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        var down = th.getAttribute("data-dir") !== "down";
        tableEl.querySelectorAll("th").forEach(function (h) { h.removeAttribute("data-dir"); });
        th.setAttribute("data-dir", down ? "down" : "up");
        var key = function (r) {
          var c = r.cells[col], v = c.getAttribute("data-sort");
          v = v === null ? c.textContent : v;
          var x = parseFloat(v);
          return isNaN(x) ? v : x;
        };
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          var o = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
          return down ? -o : o;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }

  function tooltip() {
    var tip = document.createElement("div");
    tip.id = "tip";
    document.body.appendChild(tip);
    document.addEventListener("mousemove", function (ev) {
      var g = ev.target.closest ? ev.target.closest("[data-tip]") : null;
      if (!g) { tip.style.display = "none"; return; }
      tip.textContent = g.getAttribute("data-tip");
      tip.style.display = "block";
      tip.style.left = (ev.pageX + 14) + "px";
      tip.style.top = (ev.pageY + 10) + "px";
    });
  }

  function embedded() {
    document.querySelectorAll("button.open-run").forEach(function (b) {
      b.addEventListener("click", function () {
        var frame = document.getElementById("run-frame");
        frame.srcdoc = data.pages[b.getAttribute("data-page")];
        frame.style.display = "block";
        document.getElementById("run-frame-title").textContent = b.getAttribute("data-title");
        frame.scrollIntoView();
      });
    });
  }

  document.querySelectorAll("table.sortable").forEach(sortable);
  tooltip();
  embedded();
  if (data.kind === "run") { wireRun(data.run); }
  (data.graphs || []).forEach(function (g) { showRun(g.run, g.run.epochs.length - 1, document, g.prefix); });
  document.body.setAttribute("data-ready", "1");
})();
