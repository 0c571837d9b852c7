// thaw serve's only script: tables sort on a header click, and a page that follows a running
// sweep refreshes its live part every few seconds without a reload (no framework, no CDN).
"use strict";

const REFRESH_MS = 3000;
// The sort a user chose, per table position, kept across refreshes.
const chosenSorts = new Map();

function cellValue(cell) {
  const text = cell.textContent.trim();
  const number = parseFloat(text.replace(/,/g, ""));
  return Number.isNaN(number) ? text.toLowerCase() : number;
}

function sortTable(table, column, descending) {
  const body = table.tBodies[0];
  if (!body) return;
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellValue(a.cells[column] || a), y = cellValue(b.cells[column] || b);
    const order = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : typeof x === "number" ? -1 : 1;
    return descending ? -order : order;
  });
  rows.forEach((row) => body.appendChild(row));
}

function makeSortable(root) {
  root.querySelectorAll("table").forEach((table, index) => {
    const headers = table.tHead ? table.tHead.rows[0].cells : [];
    Array.from(headers).forEach((th, column) => {
      if (!th.textContent.trim()) return;
      th.classList.add("sortable");
      th.title = "sort by this column";
      th.addEventListener("click", () => {
        const previous = chosenSorts.get(index);
        const descending = previous && previous.column === column ? !previous.descending : false;
        chosenSorts.set(index, { column, descending });
        sortTable(table, column, descending);
      });
    });
    const chosen = chosenSorts.get(index);
    if (chosen) sortTable(table, chosen.column, chosen.descending);
  });
}

async function refresh() {
  const live = document.getElementById("live");
  try {
    const response = await fetch(window.location.href, { cache: "no-store" });
    if (!response.ok) throw new Error(response.status + " " + response.statusText);
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const freshLive = fresh.getElementById("live");
    if (freshLive && freshLive.innerHTML !== live.innerHTML) {
      // What the user opened stays open.
      const opened = Array.from(live.querySelectorAll("details")).map((d) => d.open);
      live.innerHTML = freshLive.innerHTML;
      live.querySelectorAll("details").forEach((d, i) => { d.open = d.open || opened[i] === true; });
      makeSortable(live);
    }
    setStatus("updated " + new Date().toLocaleTimeString());
    if (fresh.body.dataset.live === "on") setTimeout(refresh, REFRESH_MS);
    else setStatus("finished: no more updates");
  } catch (error) {
    setStatus("cannot reach thaw serve (" + error.message + "); retrying");
    setTimeout(refresh, REFRESH_MS * 3);
  }
}

function setStatus(text) {
  const status = document.getElementById("live-status");
  if (status) status.textContent = text;
}

makeSortable(document);
if (document.body.dataset.live === "on" && document.getElementById("live")) {
  setTimeout(refresh, REFRESH_MS);
}
