// fatsr compare page: swipe / side-by-side viewer of the layers of each item (an image or a
// scene region). All pictures are data URIs in the JSON block; nothing is fetched.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("fatsr-data").textContent);
  const $ = (id) => document.getElementById(id);
  const viewer = $("viewer");
  const panes = [$("pane-a"), $("pane-b")];
  const imgs = panes.map((p) => p.querySelector("img"));
  const selects = [$("layer-a"), $("layer-b")];
  const loupe = $("loupe");
  const MAX_ZOOM = 32, LOUPE_ZOOM = 4;
  const state = { item: 0, layers: ["LR", null], mode: "swipe", split: 0.5, zoom: 1, x: 0, y: 0, magnifier: false };
  const SCORES = [["psnr_y", "PSNR-Y", 2], ["ssim_y", "SSIM-Y", 4], ["gain", "gain", 2],
                  ["psnr_low", "PSNR-lo", 2], ["psnr_mid", "PSNR-mid", 2], ["psnr_high", "PSNR-hi", 2]];

  const item = () => DATA.items[state.item];
  const fmt = (v, digits) => (v === null || v === undefined ? "-" : v.toFixed(digits));
  const signed = (v) => (v === null || v === undefined ? "-" : (v > 0 ? "+" : "") + v.toFixed(2));
  const gainClass = (v) => (v === null || v === undefined ? "" : v < 0 ? "worse" : "better");
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    Object.assign(e, attrs || {});
    for (const c of children) e.append(c);
    return e;
  }
  function status(text) { $("status").textContent = text || ""; }

  // --- layers and items ------------------------------------------------------------------
  function layerIndex(name) { return item().layers.findIndex((l) => l.name === name); }

  // The layers an item opens on (the page data's choice: bicubic against the best model).
  function defaultLayers() { return item().start.slice(); }

  function fillSelects() {
    for (const s of selects) {
      s.replaceChildren(...item().layers.map((l, i) => el("option", { value: l.name, textContent: `${i + 1} ${l.name}` })));
    }
  }

  function setLayers(a, b) {
    const fallback = defaultLayers();
    state.layers = [layerIndex(a) >= 0 ? a : fallback[0], layerIndex(b) >= 0 ? b : fallback[1]];
    state.layers.forEach((name, k) => {
      const layer = item().layers[layerIndex(name)];
      if (imgs[k].getAttribute("src") !== layer.src) imgs[k].src = layer.src;
      imgs[k].style.width = item().width + "px";
      imgs[k].style.height = item().height + "px";
      imgs[k].dataset.layer = name;
      selects[k].value = name;
      panes[k].querySelector(".label").textContent = name + (layer.lr ? " (nearest)" : "");
    });
    updateScores();
    updateLoupeImage();
  }

  function cycleLayer(k, step) {
    const n = item().layers.length;
    const i = (layerIndex(state.layers[k]) + step + n) % n;
    const names = state.layers.slice();
    names[k] = item().layers[i].name;
    setLayers(...names);
  }

  function select(index) {
    const count = DATA.items.length;
    state.item = ((index % count) + count) % count;
    fillSelects();
    setLayers(...state.layers);
    document.querySelectorAll("#thumbs li, #table tbody tr").forEach((e) => e.classList.toggle("current", +e.dataset.index === state.item));
    document.querySelectorAll("#overview .cell").forEach((e) => e.classList.toggle("current", +e.dataset.index === state.item));
    const current = document.querySelector("#thumbs li.current");
    if (current) current.scrollIntoView({ block: "nearest" });
    fit();
    status("");
  }

  // --- view: zoom and pan, shared by both panes -------------------------------------------
  function paneSize() { const r = panes[0].getBoundingClientRect(); return [r.width, r.height]; }

  function apply() {
    const t = `translate(${state.x}px, ${state.y}px) scale(${state.zoom})`;
    imgs.forEach((img) => { img.style.transform = t; });
    viewer.style.setProperty("--split", (state.split * 100).toFixed(3) + "%");
    viewer.className = state.mode;
    $("mode").textContent = state.mode === "swipe" ? "side by side" : "swipe";
    $("zoom-label").textContent = (state.zoom >= 10 ? state.zoom.toFixed(0) : state.zoom.toFixed(2).replace(/\.?0+$/, "")) + "x";
  }

  function fit() {
    const [w, h] = paneSize();
    state.zoom = Math.min(w / item().width, h / item().height);
    state.x = (w - item().width * state.zoom) / 2;
    state.y = (h - item().height * state.zoom) / 2;
    apply();
  }

  function zoomAt(factor, cx, cy) {
    const [w, h] = paneSize();
    const minZoom = Math.min(w / item().width, h / item().height, 1) / 2;
    const zoom = Math.min(MAX_ZOOM, Math.max(minZoom, state.zoom * factor));
    if (cx === undefined) { cx = w / 2; cy = h / 2; }
    state.x = cx - (cx - state.x) * (zoom / state.zoom);
    state.y = cy - (cy - state.y) * (zoom / state.zoom);
    state.zoom = zoom;
    apply();
  }

  function pan(dx, dy) { state.x += dx; state.y += dy; apply(); }

  // Pointer position inside the pane under it, and which pane (0 left, 1 right).
  function pointer(event) {
    const r = viewer.getBoundingClientRect();
    let px = event.clientX - r.left, py = event.clientY - r.top, k;
    if (state.mode === "side") {
      const pr = panes[1].getBoundingClientRect();
      k = event.clientX >= pr.left ? 1 : 0;
      px = event.clientX - panes[k].getBoundingClientRect().left;
    } else {
      k = px >= state.split * r.width ? 1 : 0;
    }
    return { px, py, k, vx: event.clientX - r.left, vy: py };
  }

  // --- mouse ------------------------------------------------------------------------------
  let drag = null;
  viewer.addEventListener("pointerdown", (e) => {
    viewer.focus();
    const onHandle = e.target.closest("#slider");
    drag = { kind: onHandle ? "slider" : "pan", x: e.clientX, y: e.clientY };
    viewer.setPointerCapture(e.pointerId);
    if (!onHandle) viewer.classList.add("dragging");
    e.preventDefault();
  });
  viewer.addEventListener("pointermove", (e) => {
    const p = pointer(e);
    if (drag && drag.kind === "slider") {
      const r = viewer.getBoundingClientRect();
      state.split = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
      apply();
    } else if (drag) {
      pan(e.clientX - drag.x, e.clientY - drag.y);
      drag.x = e.clientX; drag.y = e.clientY;
    }
    showCursor(p);
    moveLoupe(p);
  });
  const endDrag = () => { drag = null; viewer.classList.remove("dragging"); };
  viewer.addEventListener("pointerup", endDrag);
  viewer.addEventListener("pointercancel", endDrag);
  viewer.addEventListener("pointerleave", () => { loupe.hidden = true; });
  viewer.addEventListener("wheel", (e) => {
    e.preventDefault();
    const p = pointer(e);
    zoomAt(Math.pow(2, -e.deltaY / 300), p.px, p.py);
    moveLoupe(p);
  }, { passive: false });
  viewer.addEventListener("dblclick", (e) => { const p = pointer(e); zoomAt(2, p.px, p.py); });

  // --- keyboard ---------------------------------------------------------------------------
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "SELECT" || e.target.tagName === "INPUT" || e.ctrlKey || e.metaKey || e.altKey) return;
    const step = e.shiftKey ? 200 : 40;
    const digit = /^Digit([1-9])$/.exec(e.code);
    if (digit) {
      const i = +digit[1] - 1;
      if (i < item().layers.length) {
        const names = state.layers.slice();
        names[e.shiftKey ? 0 : 1] = item().layers[i].name;
        setLayers(...names);
      }
    } else if (e.code === "Digit0") fit();
    else if (e.key === "+" || e.key === "=") zoomAt(2);
    else if (e.key === "-" || e.key === "_") zoomAt(0.5);
    else if (e.key === "ArrowLeft") pan(step, 0);
    else if (e.key === "ArrowRight") pan(-step, 0);
    else if (e.key === "ArrowUp") pan(0, step);
    else if (e.key === "ArrowDown") pan(0, -step);
    else if (e.key === "[" || e.key === "]") { state.split = Math.min(1, Math.max(0, state.split + (e.key === "]" ? 0.05 : -0.05))); apply(); }
    else if (e.key === "a" || e.key === "A") cycleLayer(0, e.shiftKey ? -1 : 1);
    else if (e.key === "b" || e.key === "B") cycleLayer(1, e.shiftKey ? -1 : 1);
    else if (e.key === "x") setLayers(state.layers[1], state.layers[0]);
    else if (e.key === "s") toggleMode();
    else if (e.key === "m") toggleMagnifier();
    else if (e.key === "n" || e.key === "PageDown") select(state.item + 1);
    else if (e.key === "p" || e.key === "PageUp") select(state.item - 1);
    else return;
    e.preventDefault();
  });

  function toggleMode() {
    // Keep the image point at the centre of the (left) pane where it is when the panes resize.
    const [w0, h0] = paneSize();
    const cx = (w0 / 2 - state.x) / state.zoom, cy = (h0 / 2 - state.y) / state.zoom;
    state.mode = state.mode === "swipe" ? "side" : "swipe";
    apply();
    const [w1, h1] = paneSize();
    state.x = w1 / 2 - cx * state.zoom; state.y = h1 / 2 - cy * state.zoom;
    apply();
  }

  function toggleMagnifier(on) {
    state.magnifier = on === undefined ? !state.magnifier : on;
    $("magnifier").checked = state.magnifier;
    if (!state.magnifier) loupe.hidden = true;
  }

  // --- magnifier and cursor ---------------------------------------------------------------
  let loupeLayer = 1;
  function updateLoupeImage() {
    const img = loupe.querySelector("img");
    const src = imgs[loupeLayer].getAttribute("src");
    if (img.getAttribute("src") !== src) img.src = src;
    img.style.width = item().width + "px";
    img.style.height = item().height + "px";
  }

  function moveLoupe(p) {
    if (!state.magnifier) return;
    loupeLayer = p.k;
    updateLoupeImage();
    const zoom = Math.min(MAX_ZOOM * LOUPE_ZOOM, state.zoom * LOUPE_ZOOM);
    const ix = (p.px - state.x) / state.zoom, iy = (p.py - state.y) / state.zoom;
    loupe.hidden = false;
    loupe.style.left = p.vx - 100 + "px";
    loupe.style.top = p.vy - 100 + "px";
    loupe.querySelector("img").style.transform = `translate(${100 - ix * zoom}px, ${100 - iy * zoom}px) scale(${zoom})`;
  }

  function geoText(geo, x, y) {
    const t = geo.transform;
    const X = t[0] * x + t[1] * y + t[2], Y = t[3] * x + t[4] * y + t[5];
    const digits = Math.abs(t[0]) < 1 ? 2 : 1;
    return `${geo.crs || "no CRS:"}  x ${X.toFixed(digits)}  y ${Y.toFixed(digits)}`;
  }

  function showCursor(p) {
    const x = (p.px - state.x) / state.zoom, y = (p.py - state.y) / state.zoom;
    const it = item();
    if (x < 0 || y < 0 || x >= it.width || y >= it.height) { $("cursor").textContent = "\u00a0"; return; }
    let text = `${state.layers[p.k]}  pixel ${Math.floor(x)}, ${Math.floor(y)}  (LR ${Math.floor(x / DATA.scale)}, ${Math.floor(y / DATA.scale)})`;
    if (it.geo) text += "   " + geoText(it.geo, x, y);
    $("cursor").textContent = text;
  }

  // --- numbers ----------------------------------------------------------------------------
  function updateScores() {
    const scored = item().layers.filter((l) => l.scores);
    const table = $("scores");
    table.hidden = scored.length === 0;
    table.tHead.replaceChildren(el("tr", {}, el("th", { textContent: "layer" }), ...SCORES.map(([, h]) => el("th", { textContent: h }))));
    table.tBodies[0].replaceChildren(...scored.map((l) => el("tr", { className: state.layers.includes(l.name) ? "shown" : "" },
      el("td", { textContent: l.name }),
      ...SCORES.map(([k, , d]) => el("td", { textContent: k === "gain" ? signed(l.scores[k]) : fmt(l.scores[k], d),
                                                className: k === "gain" ? gainClass(l.scores[k]) : "" })))));
  }

  function buildTable() {
    if (!DATA.table) return;
    $("table-wrap").hidden = false;
    const first = DATA.items[0].layers.find((l) => l.scores && l.name !== "bicubic") || DATA.items[0].layers.find((l) => l.scores);
    const heads = ["#", "image", "PSNR-Y", "SSIM-Y", "bicubic PSNR-Y", "gain", "PSNR-lo", "PSNR-mid", "PSNR-hi"];
    $("table").tHead.replaceChildren(el("tr", {}, ...heads.map((h) => el("th", { textContent: h }))));
    $("table").createCaption().textContent = `${first ? first.name : ""}: each image's scores, in the order of the page`;
    $("table").tBodies[0].replaceChildren(...DATA.items.map((it, i) => {
      const m = it.layers.find((l) => first && l.name === first.name);
      const b = it.layers.find((l) => l.name === "bicubic" && l.scores);
      const s = (m && m.scores) || {};
      const row = el("tr", {}, el("td", { textContent: i + 1 }), el("td", { textContent: it.name }),
        el("td", { textContent: fmt(s.psnr_y, 2) }), el("td", { textContent: fmt(s.ssim_y, 4) }),
        el("td", { textContent: fmt(b ? b.scores.psnr_y : null, 2) }),
        el("td", { textContent: signed(s.gain), className: gainClass(s.gain) }),
        el("td", { textContent: fmt(s.psnr_low, 2) }), el("td", { textContent: fmt(s.psnr_mid, 2) }),
        el("td", { textContent: fmt(s.psnr_high, 2) }));
      row.dataset.index = i;
      row.addEventListener("click", () => select(i));
      return row;
    }));
  }

  function buildThumbs() {
    $("thumbs").replaceChildren(...DATA.items.map((it, i) => {
      const li = el("li", { title: it.name }, el("img", { src: it.thumb, alt: "" }),
        el("span", {}, it.name, it.gain !== null && it.gain !== undefined ? el("span", { className: "small " + gainClass(it.gain), textContent: "  " + signed(it.gain) + " dB" }) : ""));
      li.dataset.index = i;
      li.addEventListener("click", () => select(i));
      return li;
    }));
  }

  // --- scene overview ---------------------------------------------------------------------
  function buildScene() {
    const sc = DATA.scene;
    if (!sc) return;
    $("overview-wrap").hidden = false;
    $("overview-img").src = sc.overview;
    const box = $("overview");
    DATA.items.forEach((it, i) => {
      const [c, r] = it.cell;
      const w = Math.min(sc.cell, sc.width - c * sc.cell), h = Math.min(sc.cell, sc.height - r * sc.cell);
      const cell = el("div", { className: "cell", title: it.name });
      Object.assign(cell.style, { left: (100 * c * sc.cell) / sc.width + "%", top: (100 * r * sc.cell) / sc.height + "%",
                                  width: (100 * w) / sc.width + "%", height: (100 * h) / sc.height + "%" });
      cell.dataset.index = i;
      box.append(cell);
    });
    const at = (e) => {
      const r = box.getBoundingClientRect();
      return [((e.clientX - r.left) / r.width) * sc.width, ((e.clientY - r.top) / r.height) * sc.height];
    };
    box.addEventListener("mousemove", (e) => {
      const [x, y] = at(e);
      $("overview-cursor").textContent = `LR pixel ${Math.floor(x)}, ${Math.floor(y)}   ` + geoText(sc, x, y);
    });
    box.addEventListener("click", (e) => {
      const [x, y] = at(e);
      const c = Math.floor(x / sc.cell), r = Math.floor(y / sc.cell);
      const i = DATA.items.findIndex((it) => it.cell[0] === c && it.cell[1] === r);
      if (i >= 0) { select(i); return; }
      const t = sc.transform;
      const cx = (c + 0.5) * sc.cell, cy = (r + 0.5) * sc.cell;
      const X = t[0] * cx + t[1] * cy + t[2], Y = t[3] * cx + t[4] * cy + t[5];
      status(`region ${c},${r} is not in this page; to add it run: ${sc.command} --region ${X.toFixed(2)} ${Y.toFixed(2)}`);
    });
    const notes = [`bands ${sc.bands.join(",")} of ${sc.name} (${sc.width}x${sc.height} LR pixels), ` +
                   `value mapping: ${sc.mapping.method}, low ${sc.mapping.low.map((v) => +v.toFixed(2)).join("/")}, ` +
                   `high ${sc.mapping.high.map((v) => +v.toFixed(2)).join("/")}; ${DATA.items.length} regions of ${sc.cell} px computed`];
    DATA.notes.push(...notes);
  }

  // --- wiring -----------------------------------------------------------------------------
  selects.forEach((s, k) => s.addEventListener("change", () => {
    const names = state.layers.slice(); names[k] = s.value; setLayers(...names); viewer.focus();
  }));
  $("swap").addEventListener("click", () => setLayers(state.layers[1], state.layers[0]));
  $("mode").addEventListener("click", toggleMode);
  $("zoom-in").addEventListener("click", () => zoomAt(2));
  $("zoom-out").addEventListener("click", () => zoomAt(0.5));
  $("fit").addEventListener("click", fit);
  $("magnifier").addEventListener("change", (e) => { toggleMagnifier(e.target.checked); viewer.focus(); });
  window.addEventListener("resize", fit);

  if (!DATA.items.length) { status("nothing to show"); return; }
  buildTable();
  buildThumbs();
  buildScene();
  $("notes").textContent = DATA.notes.join(" ");
  state.layers = [null, null];
  state.item = 0;
  fillSelects();
  state.layers = defaultLayers();
  select(0);
  viewer.focus();
  // For scripts and tests: the state (read only) and the current item.
  window.fatsrPage = { state, item, select, setLayers, fit };
})();
