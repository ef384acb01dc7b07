//! The workers the bench compares and the runtimes it runs them in.
//!
//! * [`WorkerKind::Ours`]: the Rust build (`build/`, or `$LATENCY_BENCH_WORKER_DIR/build/`).
//! * [`WorkerKind::PassThrough`]: `benches/passthrough/worker.js`, the floor.
//!
//! * [`Runtime::WranglerDev`]: the integration-test harness's [`Worker`] (`wrangler dev`, with
//!   its dev proxy in front of the worker).
//! * [`Runtime::Bare`]: `benches/serve.mjs`, Miniflare's API on one workerd, no dev proxy; run
//!   in its own process group, stopped group-wide like the harness stops wrangler.

use crate::common::worker::{new_run_dir, read_log, ProcessGroup};
use crate::common::{
    get, process_group_members, try_request, MockGemini, MockLayercode, Worker, WorkerOptions,
};
use serde_json::{Map, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// `LATENCY_BENCH_WIRE=openai`: ours asks the mock over the OpenAI chat completions wire
/// (`MODELS` with one openai entry), the pass-through still over Gemini's. Full runs only.
fn openai_wire_from_env() -> bool {
    std::env::var("LATENCY_BENCH_WIRE").is_ok_and(|wire| wire == "openai")
}

/// Where ours sends its requests over the OpenAI wire.
pub const OPENAI_PATH: &str = "/v1/chat/completions";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkerKind {
    Ours,
    PassThrough,
}

impl WorkerKind {
    pub fn name(self) -> &'static str {
        match self {
            WorkerKind::Ours => "ours",
            WorkerKind::PassThrough => "pass-through",
        }
    }

    /// Short form for conversation ids.
    fn id(self) -> &'static str {
        match self {
            WorkerKind::Ours => "ours",
            WorkerKind::PassThrough => "pt",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Runtime {
    WranglerDev,
    Bare,
}

impl Runtime {
    pub fn name(self) -> &'static str {
        match self {
            Runtime::WranglerDev => "wrangler dev",
            Runtime::Bare => "bare workerd (Miniflare API)",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Runtime::WranglerDev => "wd",
            Runtime::Bare => "bare",
        }
    }

    /// `wrangler` or `bare`, as `LATENCY_BENCH_RUNTIMES` spells them.
    pub fn parse(word: &str) -> Option<Runtime> {
        match word.trim() {
            "wrangler" => Some(Runtime::WranglerDev),
            "bare" => Some(Runtime::Bare),
            _ => None,
        }
    }
}

/// One worker in one runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub worker: WorkerKind,
    pub runtime: Runtime,
}

impl Target {
    pub fn label(self) -> String {
        format!("{}, {}", self.worker.name(), self.runtime.name())
    }

    /// Prefix for conversation ids, unique per target: every turn of a run has its own text.
    pub fn id(self) -> String {
        format!("{}-{}", self.runtime.id(), self.worker.id())
    }
}

/// Where the two workers are.
pub struct Workers {
    /// The repository the bench belongs to (node_modules, benches/).
    pub repo: PathBuf,
    /// The directory whose `wrangler.toml` and `build/` are "ours".
    pub ours_dir: PathBuf,
    /// Ours asks the model over the OpenAI wire (`LATENCY_BENCH_WIRE=openai`).
    pub openai_wire: bool,
}

impl Workers {
    /// Ours is this repository unless `LATENCY_BENCH_WORKER_DIR` names another checkout.
    pub fn from_env() -> Workers {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let ours_dir = match std::env::var_os("LATENCY_BENCH_WORKER_DIR") {
            Some(dir) => fs::canonicalize(&dir).unwrap_or_else(|e| {
                panic!(
                    "LATENCY_BENCH_WORKER_DIR={}: {e}",
                    Path::new(&dir).display()
                )
            }),
            None => repo.clone(),
        };
        Workers {
            openai_wire: openai_wire_from_env(),
            ..Workers::with_ours(repo, ours_dir)
        }
    }

    /// Ours is this repository over Gemini's wire, whatever the environment says.
    pub fn repository() -> Workers {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        Workers::with_ours(repo.clone(), repo)
    }

    /// Ours is the contract's floor in plain JS, `benches/contract/<variant>`.
    pub fn contract_floor(variant: &str) -> Workers {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let ours_dir = repo.join("benches/contract").join(variant);
        Workers::with_ours(repo, ours_dir)
    }

    fn with_ours(repo: PathBuf, ours_dir: PathBuf) -> Workers {
        // A Rust build (`build/index.js` and its wasm) or plain JS, like benches/contract/.
        let main = toml_value(&ours_dir.join("wrangler.toml"), "main");
        assert!(
            ours_dir.join(&main).is_file(),
            "{} is missing (run sh scripts/build.sh there)",
            ours_dir.join(&main).display()
        );
        let workers = Workers {
            repo,
            ours_dir,
            openai_wire: false,
        };
        let (ours, floor) = (
            compatibility_date(&workers.config(WorkerKind::Ours)),
            compatibility_date(&workers.config(WorkerKind::PassThrough)),
        );
        assert_eq!(
            ours, floor,
            "benches/passthrough/wrangler.toml must have the compatibility_date of the worker's \
             wrangler.toml"
        );
        workers
    }

    pub fn config(&self, worker: WorkerKind) -> PathBuf {
        match worker {
            WorkerKind::Ours => self.ours_dir.join("wrangler.toml"),
            WorkerKind::PassThrough => self.repo.join("benches/passthrough/wrangler.toml"),
        }
    }

    /// Ours' wasm, unless ours is plain JS (the contract's floor).
    pub fn ours_wasm(&self) -> Option<PathBuf> {
        Some(self.ours_dir.join("build/index_bg.wasm")).filter(|wasm| wasm.is_file())
    }
}

/// The `compatibility_date = "…"` line of a wrangler.toml.
fn compatibility_date(wrangler_toml: &Path) -> String {
    toml_value(wrangler_toml, "compatibility_date")
}

/// A top-level `key = "value"` of a wrangler.toml (the first line that sets it).
fn toml_value(wrangler_toml: &Path, key: &str) -> String {
    let prefix = format!("{key} = ");
    fs::read_to_string(wrangler_toml)
        .unwrap_or_else(|e| panic!("read {}: {e}", wrangler_toml.display()))
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("no {key} in {}", wrangler_toml.display()))
}

/// A running server of one target. Stops (whole process group) on drop.
pub struct Server {
    pub target: Target,
    pub base_url: String,
    /// Spawn → first 200 from `GET /health`.
    pub startup: Duration,
    /// serve.mjs's own account of its start (config read, Miniflare start).
    pub startup_note: Option<String>,
    running: Running,
}

enum Running {
    Wrangler(Worker),
    Bare {
        // Dropped first: stops the processes before the log is read for the last time.
        group: ProcessGroup,
        log: PathBuf,
    },
}

const BARE_READY_TIMEOUT: Duration = Duration::from_secs(60);

impl Server {
    /// Starts `target` against the mocks and waits until it answers `GET /health` with 200.
    pub fn start(
        target: Target,
        workers: &Workers,
        gemini: &MockGemini,
        layercode: &MockLayercode,
    ) -> Server {
        let mut options = WorkerOptions::new(gemini, layercode);
        if target.worker == WorkerKind::PassThrough || workers.ours_dir != workers.repo {
            options = options.config(&workers.config(target.worker));
        }
        if target.worker == WorkerKind::Ours && workers.openai_wire {
            let models = format!(
                r#"[{{"api": "openai", "model": "bench", "base_url": "{}/v1"}}]"#,
                gemini.base_url()
            );
            options = options
                .var("MODELS", &models)
                .secret("OPENAI_API_KEY", "bench_openai_key");
        }
        let started = Instant::now();
        match target.runtime {
            Runtime::WranglerDev => {
                let worker = Worker::start(options);
                Server {
                    target,
                    base_url: worker.base_url.clone(),
                    startup: started.elapsed(),
                    startup_note: None,
                    running: Running::Wrangler(worker),
                }
            }
            Runtime::Bare => start_bare(target, workers, &options, started),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn pgid(&self) -> i32 {
        match &self.running {
            Running::Wrangler(worker) => worker.pgid(),
            Running::Bare { group, .. } => group.pgid,
        }
    }

    /// Everything the server's processes printed so far (the worker's log lines among it).
    pub fn logs(&self) -> String {
        match &self.running {
            Running::Wrangler(worker) => worker.logs(),
            Running::Bare { log, .. } => read_log(log),
        }
    }

    /// Names a process of this server's group in CPU tables, from its command line.
    pub fn process_label(&self, cmd: &str) -> String {
        process_label(self.target.runtime, cmd)
    }

    /// Stops the whole group and checks that nothing of it is left.
    pub fn stop(self) {
        let pgid = self.pgid();
        drop(self);
        let left = process_group_members(pgid);
        assert!(left.is_empty(), "processes survived stop(): {left:?}");
    }
}

/// wrangler dev runs node (the CLI) and workerd: one serving the public port as a proxy, one
/// running the worker and its Durable Objects (the one with the inspector). serve.mjs runs node
/// (Miniflare) and a single workerd.
fn process_label(runtime: Runtime, cmd: &str) -> String {
    let program = cmd
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let label = if cmd.contains("workerd") {
        match runtime {
            Runtime::Bare => "workerd (worker + Durable Objects)",
            Runtime::WranglerDev if cmd.contains("--inspector-addr") => {
                "workerd (worker + Durable Objects)"
            }
            Runtime::WranglerDev => "workerd (wrangler dev proxy)",
        }
    } else if cmd.contains("serve.mjs") {
        "node (serve.mjs: Miniflare)"
    } else if cmd.contains("wrangler") {
        "node (wrangler dev)"
    } else {
        program
    };
    label.to_string()
}

fn start_bare(
    target: Target,
    workers: &Workers,
    options: &WorkerOptions,
    started: Instant,
) -> Server {
    let run_dir = new_run_dir(&workers.repo);
    // The same vars and secrets the harness hands wrangler dev (`--var`, `--env-file`).
    let bindings: Map<String, Value> = options
        .vars
        .iter()
        .chain(&options.secrets)
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let bindings_file = run_dir.join("bindings.json");
    fs::write(&bindings_file, Value::Object(bindings).to_string()).expect("write bindings.json");
    let log = run_dir.join("serve.log");
    let mut cmd = Command::new(workers.repo.join(crate::common::worker::PINNED_NODE));
    cmd.current_dir(&workers.repo)
        .arg(workers.repo.join("benches/serve.mjs"))
        .arg(workers.config(target.worker))
        .arg(run_dir.join("state"))
        .arg(&bindings_file)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_SEND_ERROR_REPORTS", "false")
        .env("NO_COLOR", "1");
    // Named like the harness's, so test.sh and the next run clean up after a killed bench.
    let mut group = ProcessGroup::spawn(cmd, &log, &run_dir.with_extension("1.pgid"));
    let deadline = Instant::now() + BARE_READY_TIMEOUT;
    let ready_line = loop {
        let text = read_log(&log);
        if let Some(line) = text.lines().find(|l| l.starts_with("ready on ")) {
            break line.to_string();
        }
        if let Some(status) = group.exit_status() {
            panic!("serve.mjs {status}:\n{text}");
        }
        if Instant::now() >= deadline {
            drop(group);
            panic!("serve.mjs not ready within {BARE_READY_TIMEOUT:?}:\n{text}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let base_url = ready_line
        .strip_prefix("ready on ")
        .and_then(|rest| rest.split_whitespace().next())
        .expect("ready line names the URL")
        .to_string();
    let health = format!("{base_url}/health");
    loop {
        match try_request("GET", &health, &[], b"", Duration::from_secs(5)) {
            Ok(r) if r.status == 200 => break,
            _ if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            other => panic!("{health}: {other:?}"),
        }
    }
    let startup = started.elapsed();
    assert_eq!(get(&health).status, 200);
    Server {
        target,
        base_url,
        startup,
        startup_note: ready_line
            .split_once(" (")
            .map(|(_, note)| note.trim_end_matches(')').to_string()),
        running: Running::Bare { group, log },
    }
}
