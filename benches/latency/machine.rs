//! What the machine was doing: CPU time of processes and of the whole machine (from /proc),
//! the environment the numbers were taken in, and the size of the worker's wasm.

use crate::common::process_group_members;
use crate::common::worker::PINNED_NODE;
use serde_json::Value;
use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

extern "C" {
    /// POSIX sysconf(3).
    fn sysconf(name: i32) -> i64;
}
/// `_SC_CLK_TCK` on Linux: the unit of the times in /proc/<pid>/stat and /proc/stat.
const SC_CLK_TCK: i32 = 2;

fn clock_ticks_per_second() -> u64 {
    // SAFETY: plain libc call without pointers.
    let ticks = unsafe { sysconf(SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

fn ticks(n: u64) -> Duration {
    Duration::from_secs_f64(n as f64 / clock_ticks_per_second() as f64)
}

/// utime + stime of a process (`self` for this one), from /proc/<pid>/stat.
fn process_cpu(pid: &str) -> Option<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let used = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks(used))
}

/// (busy, total) CPU time of the whole machine, all cores, from the first line of /proc/stat.
fn machine_cpu() -> Option<(Duration, Duration)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let values: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((ticks(total - idle), ticks(total)))
}

/// CPU used between two [`CpuSnapshot`]s.
#[derive(Clone, Debug, Default)]
pub struct CpuUse {
    /// Per process of the server's group and this bench process: (label, CPU time), busiest
    /// first. Processes with the same label are added up.
    pub processes: Vec<(String, Duration)>,
    /// CPU time the whole machine was busy (all cores, every process of every user).
    pub machine_busy: Duration,
    /// Wall-clock time × number of cores.
    pub machine_total: Duration,
}

impl CpuUse {
    /// CPU time of the server's processes and the bench together.
    pub fn ours(&self) -> Duration {
        self.processes.iter().map(|(_, t)| *t).sum()
    }

    /// CPU time of the server's processes alone (without the bench's clients and mocks).
    pub fn server(&self) -> Duration {
        self.processes
            .iter()
            .filter(|(label, _)| label != BENCH_PROCESS)
            .map(|(_, t)| *t)
            .sum()
    }

    /// Adds another measurement of the same server (same labels) to this one.
    pub fn add(&mut self, other: &CpuUse) {
        for (label, t) in &other.processes {
            match self.processes.iter_mut().find(|(l, _)| l == label) {
                Some(entry) => entry.1 += *t,
                None => self.processes.push((label.clone(), *t)),
            }
        }
        self.processes.sort_by_key(|p| std::cmp::Reverse(p.1));
        self.machine_busy += other.machine_busy;
        self.machine_total += other.machine_total;
    }
}

/// The bench process's label in CPU tables.
pub const BENCH_PROCESS: &str = "bench process (clients + mock Gemini)";

/// The processes whose CPU time is counted: a server's process group (listed once, so a
/// snapshot reads only their /proc/<pid>/stat, cheap enough to take around every turn) and this
/// bench process (the clients and the mocks).
pub struct Processes {
    /// (pid, label)
    members: Vec<(String, String)>,
}

impl Processes {
    /// `label(command line)` names each process of group `pgid`.
    pub fn of_group(pgid: i32, label: &dyn Fn(&str) -> String) -> Processes {
        let mut members: Vec<(String, String)> = process_group_members(pgid)
            .into_iter()
            .map(|(pid, cmd)| (pid.to_string(), label(&cmd)))
            .collect();
        members.push(("self".into(), BENCH_PROCESS.into()));
        Processes { members }
    }

    /// CPU time so far of each of them and of the whole machine.
    pub fn snapshot(&self) -> CpuSnapshot {
        CpuSnapshot {
            by_pid: self
                .members
                .iter()
                .filter_map(|(pid, label)| Some((pid.clone(), (label.clone(), process_cpu(pid)?))))
                .collect(),
            machine: machine_cpu(),
        }
    }
}

/// CPU time so far of some [`Processes`] and of the whole machine.
pub struct CpuSnapshot {
    by_pid: HashMap<String, (String, Duration)>,
    machine: Option<(Duration, Duration)>,
}

impl CpuSnapshot {
    /// What was used from `self` to `later`.
    pub fn until(&self, later: &CpuSnapshot) -> CpuUse {
        let mut usage = CpuUse::default();
        for (pid, (label, t)) in &later.by_pid {
            let before = self.by_pid.get(pid).map_or(Duration::ZERO, |b| b.1);
            usage.add(&CpuUse {
                processes: vec![(label.clone(), t.saturating_sub(before))],
                ..CpuUse::default()
            });
        }
        if let (Some((busy0, total0)), Some((busy1, total1))) = (self.machine, later.machine) {
            usage.machine_busy = busy1.saturating_sub(busy0);
            usage.machine_total = total1.saturating_sub(total0);
        }
        usage
    }
}

/// (raw, gzip -9) bytes of a wasm file.
pub fn wasm_sizes(path: &Path) -> (u64, u64) {
    let raw = fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run sh scripts/build.sh)", path.display()))
        .len();
    let out = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .expect("run gzip");
    assert!(out.status.success(), "gzip failed");
    (raw, out.stdout.len() as u64)
}

/// The first line a command prints, or `?`.
pub fn command_line(dir: &Path, cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".to_string())
}

/// `<short commit>` of a git checkout, with `+changes` when its work tree differs from it.
pub fn git_state(dir: &Path) -> String {
    let commit = command_line(dir, "git", &["rev-parse", "--short", "HEAD"]);
    let dirty = command_line(
        dir,
        "git",
        &["status", "--porcelain", "--untracked-files=no"],
    );
    if dirty == "?" {
        commit
    } else {
        format!("{commit}+changes")
    }
}

fn package_version(repo: &Path, package: &str) -> String {
    fs::read_to_string(repo.join(format!("node_modules/{package}/package.json")))
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| v["version"].as_str().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

/// CPU busy share over the next second (all cores), the load average and the busiest
/// processes by lifetime share: what else was running while the numbers were taken.
pub fn load(repo: &Path) -> String {
    let before = machine_cpu();
    thread::sleep(Duration::from_secs(1));
    let busy = match (before, machine_cpu()) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
            format!(
                "{:.0}%",
                100.0 * (b1 - b0).as_secs_f64() / (t1 - t0).as_secs_f64()
            )
        }
        _ => "?".to_string(),
    };
    let loadavg = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let busiest = command_line(
        repo,
        "sh",
        &[
            "-c",
            "ps -eo pcpu=,etime=,args= --sort=-pcpu | grep -v ' ps -eo' | head -5 | cut -c1-90 \
             | tr -s ' ' | paste -sd ';'",
        ],
    );
    format!(
        "CPU busy over 1 s: {busy}; loadavg {}; top processes by lifetime %CPU \
         (pcpu elapsed command): {busiest}",
        loadavg.trim()
    )
}

/// Machine, OS and tool versions.
pub fn description(repo: &Path) -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "?".to_string());
    let mem = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .nth(1)
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or("?".to_string(), |kb| {
            format!("{:.1} GiB", kb / 1024.0 / 1024.0)
        });
    let os = fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|s| s.trim_matches('"').to_string())
        .unwrap_or_else(|| "?".to_string());
    format!(
        "{} CPUs ({cpu}), {mem} RAM, {os}, kernel {}; node {}, wrangler {}, miniflare {}, \
         workerd {}",
        command_line(repo, "nproc", &[]),
        command_line(repo, "uname", &["-r"]),
        command_line(
            repo,
            &repo.join(PINNED_NODE).to_string_lossy(),
            &["--version"]
        ),
        package_version(repo, "wrangler"),
        package_version(repo, "miniflare"),
        package_version(repo, "workerd"),
    )
}
