// dcmfd's CPU time as the benchmarks read it from /proc.
// dcmfd runs its media workers as child processes (--workers), so a
// figure for "dcmfd" is the sum over the pid the benchmark started and
// every live descendant, found through /proc/PID/task/*/children. An
// older dcmfd with its workers as threads is a tree of one process.
// A process that ends between two readings takes its CPU time with it
// (the time goes to the parent's cutime only once reaped); dcmfd's
// workers live as long as dcmfd unless one fails.
"use strict";
const fs = require("fs");

// The pid and its live descendants, parents before children.
function treePids(pid) {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    let tasks = [];
    try { tasks = fs.readdirSync(`/proc/${pids[i]}/task`); } catch (e) { continue; } // ended
    for (const t of tasks) {
      let kids = "";
      try { kids = fs.readFileSync(`/proc/${pids[i]}/task/${t}/children`, "utf8").trim(); } catch (e) { /* thread ended */ }
      if (kids) pids.push(...kids.split(/\s+/).map(Number));
    }
  }
  return pids;
}

// utime + stime of the tree, in clock ticks (100 per second).
function cpuTicks(pid) {
  let ticks = 0;
  for (const p of treePids(pid)) {
    let f;
    try { f = fs.readFileSync(`/proc/${p}/stat`, "utf8"); } catch (e) { continue; } // ended
    const parts = f.slice(f.lastIndexOf(")") + 2).split(" ");
    ticks += Number(parts[11]) + Number(parts[12]);
  }
  return ticks;
}

// VmRSS of the tree, in KiB. Pages shared between the processes (the
// workers are forked from dcmfd) count once per process that maps them.
function rssKiB(pid) {
  let kib = 0;
  for (const p of treePids(pid)) {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${p}/status`, "utf8"));
      kib += m ? Number(m[1]) : 0;
    } catch (e) { /* ended meanwhile */ }
  }
  return kib;
}

module.exports = { treePids, cpuTicks, rssKiB };
