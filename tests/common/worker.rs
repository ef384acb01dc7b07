//! Runs the real worker (the prebuilt `build/index.js`) under `wrangler dev` for one test
//! (toolchain.md §7, §9, §10).
//!
//! wrangler starts a tree of processes (node launcher → node CLI → two workerd + esbuild), so it
//! is spawned as its own process group and stopped group-wide; a `.pgid` file under
//! `target/e2e/` lets CI kill groups left behind by a killed test binary.

use super::http::try_request;
use super::mock_gemini::MockGemini;
use super::mock_layercode::MockLayercode;
use serde_json::Value;
use std::cell::RefCell;
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::thread;
use std::time::{Duration, Instant};

/// Value of the `LAYERCODE_WEBHOOK_SECRET` secret in tests (sign webhooks with it).
pub const TEST_WEBHOOK_SECRET: &str = "test_webhook_secret";
/// Value of the `LAYERCODE_API_KEY` secret in tests.
pub const TEST_LAYERCODE_API_KEY: &str = "test_layercode_api_key";
/// Value of the `GOOGLE_GENERATIVE_AI_API_KEY` secret in tests.
pub const TEST_GEMINI_KEY: &str = "test_gemini_api_key";
/// Name of the var holding the Gemini base URL (pointed at [`MockGemini`]).
pub const GEMINI_BASE_URL_VAR: &str = "GEMINI_API_BASE_URL";
/// Name of the var holding the Layercode REST base URL (pointed at [`MockLayercode`]).
pub const LAYERCODE_BASE_URL_VAR: &str = "LAYERCODE_API_BASE_URL";

/// The secrets every test worker gets unless removed with [`WorkerOptions::without_secret`].
const DEFAULT_SECRETS: [(&str, &str); 3] = [
    ("LAYERCODE_WEBHOOK_SECRET", TEST_WEBHOOK_SECRET),
    ("LAYERCODE_API_KEY", TEST_LAYERCODE_API_KEY),
    ("GOOGLE_GENERATIVE_AI_API_KEY", TEST_GEMINI_KEY),
];

/// The Node that runs wrangler, relative to the repository (installed by `scripts/setup.sh`).
pub const PINNED_NODE: &str = "node_modules/.bin/node";

const READY_TIMEOUT: Duration = Duration::from_secs(90);
const READY_POLL: Duration = Duration::from_millis(100);
const SIGINT_GRACE: Duration = Duration::from_secs(10);
const SIGKILL_GRACE: Duration = Duration::from_secs(30);
const LOG_TAIL_LINES: usize = 60;

/// How to start a [`Worker`].
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Secrets, written to an `--env-file` (dotenv syntax, double-quoted values).
    pub secrets: Vec<(String, String)>,
    /// Vars, passed as `--var KEY:VALUE` (override `[vars]` in wrangler.toml).
    pub vars: Vec<(String, String)>,
    /// State directory to reuse (persistence across restarts); `None` = a fresh directory.
    pub persist_dir: Option<PathBuf>,
    /// The wrangler.toml to run (its `main` relative to its own directory); `None` = the
    /// repository's. The benchmark runs other workers (a pass-through, prototype builds) this way.
    pub config: Option<PathBuf>,
}

impl WorkerOptions {
    /// The test secrets ([`TEST_WEBHOOK_SECRET`], [`TEST_LAYERCODE_API_KEY`], [`TEST_GEMINI_KEY`])
    /// and the two base-URL vars pointing at the given mocks.
    pub fn new(gemini: &MockGemini, layercode: &MockLayercode) -> Self {
        WorkerOptions {
            secrets: DEFAULT_SECRETS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            vars: vec![
                (GEMINI_BASE_URL_VAR.to_string(), gemini.base_url()),
                (LAYERCODE_BASE_URL_VAR.to_string(), layercode.base_url()),
            ],
            persist_dir: None,
            config: None,
        }
    }

    /// Adds or overrides a var.
    pub fn var(mut self, k: &str, v: &str) -> Self {
        upsert(&mut self.vars, k, v);
        self
    }

    /// Adds or overrides a secret.
    pub fn secret(mut self, k: &str, v: &str) -> Self {
        upsert(&mut self.secrets, k, v);
        self
    }

    /// Removes a secret (to test the worker without it).
    pub fn without_secret(mut self, k: &str) -> Self {
        self.secrets.retain(|(key, _)| key != k);
        self
    }

    /// Reuses `dir` as the state directory (e.g. `first_worker.persist_dir.clone()`).
    pub fn persist_to(mut self, dir: &Path) -> Self {
        self.persist_dir = Some(dir.to_path_buf());
        self
    }

    /// Runs the worker described by this wrangler.toml instead of the repository's.
    pub fn config(mut self, wrangler_toml: &Path) -> Self {
        self.config = Some(wrangler_toml.to_path_buf());
        self
    }
}

fn upsert(list: &mut Vec<(String, String)>, k: &str, v: &str) {
    match list.iter_mut().find(|(key, _)| key == k) {
        Some(entry) => entry.1 = v.to_string(),
        None => list.push((k.to_string(), v.to_string())),
    }
}

/// A running `wrangler dev` serving the worker. Stopped (whole process group) on drop.
pub struct Worker {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The `--persist-to` directory (Durable Object state).
    pub persist_dir: PathBuf,
    /// This instance's working directory (env file, log, default state).
    pub run_dir: PathBuf,
    log_path: PathBuf,
    group: ProcessGroup,
}

/// The worker with default settings against fresh mocks. Keep the Layercode mock alive for as
/// long as the worker may call it: dropping a mock stops its server.
pub fn start_default() -> (MockGemini, MockLayercode, Worker) {
    let gemini = MockGemini::start();
    let layercode = MockLayercode::start();
    let worker = Worker::start(WorkerOptions::new(&gemini, &layercode));
    (gemini, layercode, worker)
}

impl Worker {
    /// Starts the worker and returns once it has proved it is this test's own: wrangler binds a
    /// port the kernel picks (`--port 0`, so no other process can hold it) and names it in its
    /// ready line in this instance's log, `GET /health` there answers 200, and a request for a
    /// path holding a token made for this start shows up in this instance's request log. Panics
    /// (with the log) if it is not built, exits early or is not ready within 90 s.
    pub fn start(opts: WorkerOptions) -> Worker {
        let repo = repo_dir();
        if opts.config.is_none() && !repo.join("build/index.js").is_file() {
            panic!("worker not built: run scripts/test (or scripts/build) first (no {}/build/index.js)", repo.display());
        }
        let run_dir = new_run_dir(&repo);
        let persist_dir = opts
            .persist_dir
            .clone()
            .unwrap_or_else(|| run_dir.join("state"));
        fs::create_dir_all(&persist_dir).expect("create persist dir");
        fs::write(run_dir.join("secrets.env"), dotenv(&opts.secrets)).expect("write env file");
        let log_path = run_dir.join("wrangler.log");
        let cmd = wrangler_command(&repo, &run_dir, &persist_dir, &opts);
        let mut group = ProcessGroup::spawn(cmd, &log_path, &run_dir.with_extension("pgid"));
        match wait_ready(&mut group, &log_path, &run_dir) {
            Ok(base_url) => {
                ACTIVE_LOGS.with(|l| l.borrow_mut().push(log_path.clone()));
                Worker {
                    base_url,
                    persist_dir,
                    run_dir,
                    log_path,
                    group,
                }
            }
            Err(failure) => {
                drop(group); // stop it before panicking so the log is complete
                panic!(
                    "wrangler dev failed to start ({failure}):\n{}",
                    tail(&read_log(&log_path), 200)
                );
            }
        }
    }

    /// `base_url + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Every complete line wrangler/workerd wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        read_log(&self.log_path)
    }

    /// Waits until a log line contains `needle` (workerd writes `console.log` lines there) and
    /// returns that line; panics with the log tail on timeout.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let logs = self.logs();
            if let Some(line) = logs.lines().find(|line| line.contains(needle)) {
                return line.to_string();
            }
            if Instant::now() >= deadline {
                panic!(
                    "worker log did not contain {needle:?} within {timeout:?}:\n{}",
                    tail(&logs, LOG_TAIL_LINES)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The worker's one `turn` log line for `turn_id`, parsed as JSON.
    pub fn turn_log(&self, turn_id: &str) -> serde_json::Value {
        let needle = format!("\"turn_id\":\"{turn_id}\"");
        let timeout = super::webhook::TURN_TIMEOUT;
        let deadline = Instant::now() + timeout;
        loop {
            let logs = self.logs();
            let line = logs
                .lines()
                .find(|line| line.contains("\"event\":\"turn\"") && line.contains(&needle));
            if let Some(line) = line {
                let json = &line[line.find('{').unwrap_or(0)..];
                return serde_json::from_str(json)
                    .unwrap_or_else(|e| panic!("turn line is not JSON ({e}): {line}"));
            }
            if Instant::now() >= deadline {
                panic!(
                    "no turn log line for {turn_id} within {timeout:?}:\n{}",
                    tail(&logs, LOG_TAIL_LINES)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process group id of the wrangler tree (for checking that nothing survives).
    pub fn pgid(&self) -> i32 {
        self.group.pgid
    }

    /// SQLite files of Durable Object class `Conversation`
    /// (`<persist>/v3/do/<worker-name>-Conversation/*.sqlite`, without `metadata.sqlite`).
    pub fn conversation_db_files(&self) -> Vec<PathBuf> {
        durable_object_files(&self.persist_dir, "Conversation")
    }

    /// Stops the whole process group (SIGINT, then SIGKILL after 10 s). Drop does the same;
    /// this just makes the point of stopping explicit in a test.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        ACTIVE_LOGS.with(|l| l.borrow_mut().retain(|p| *p != self.log_path));
        // `group` is dropped right after this, which stops the processes.
    }
}

/// SQLite files of Durable Object class `class` under a persist dir, sorted.
pub fn durable_object_files(persist_dir: &Path, class: &str) -> Vec<PathBuf> {
    let suffix = format!("-{class}");
    let mut files: Vec<PathBuf> = fs::read_dir(persist_dir.join("v3/do"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|dir| dir.file_name().to_string_lossy().ends_with(&suffix))
        .flat_map(|dir| fs::read_dir(dir.path()).into_iter().flatten().flatten())
        .map(|f| f.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sqlite") && !p.ends_with("metadata.sqlite"))
        .collect();
    files.sort();
    files
}

/// Runs `sqlite3 -readonly -json <file> <sql>` and returns the rows (empty for no rows).
///
/// The file belongs to a running worker (WAL mode). A WAL reader is not blocked by a writer,
/// but can find the file busy for a moment (the writer's checkpoint, or its recovery on first
/// open); the CLI's default is to fail at once with 'database is locked', so it waits instead.
pub fn sqlite_json(file: &Path, sql: &str) -> Vec<Value> {
    let out = Command::new("sqlite3")
        .arg("-readonly")
        .arg("-json")
        .args(["-cmd", ".timeout 10000"])
        .arg(file)
        .arg(sql)
        .output()
        .expect("run sqlite3 (is the sqlite3 CLI installed?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        panic!(
            "sqlite3 {} {sql:?} failed: {}{stdout}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if stdout.trim().is_empty() {
        return Vec::new();
    }
    match serde_json::from_str(&stdout) {
        Ok(Value::Array(rows)) => rows,
        _ => panic!("sqlite3 output is not a JSON array: {stdout}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Logs of the workers started on this thread (for panic messages from mocks and the client)
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// Logs of the workers alive on this test thread: each test runs on its own thread, so
    /// this finds the worker a failing wait belongs to without passing it around.
    static ACTIVE_LOGS: RefCell<Vec<PathBuf>> = const { RefCell::new(Vec::new()) };
}

/// The log tails of the workers running on the current thread, formatted for a panic message
/// (empty if there are none).
pub fn current_worker_logs() -> String {
    ACTIVE_LOGS.with(|logs| {
        logs.borrow()
            .iter()
            .map(|p| {
                format!(
                    "\n--- worker log tail ({}) ---\n{}",
                    p.display(),
                    tail(&read_log(p), LOG_TAIL_LINES)
                )
            })
            .collect()
    })
}

/// The log's complete lines as text, without ANSI colour codes: wrangler colours its error
/// blocks even with `NO_COLOR=1 FORCE_COLOR=0` and output to a file, which would break
/// substring checks.
///
/// Only complete lines: the log is read while wrangler appends to it, and a read can land in the
/// middle of a write (the kernel extends a file page by page), so the last line may be cut short:
/// a ready line naming half a port, a turn line that is not yet valid JSON or lacks the field a
/// test looks for. A line counts once its newline is there; the bytes before a newline are
/// always written before it.
pub fn read_log(path: &Path) -> String {
    let mut bytes = fs::read(path).unwrap_or_default();
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(complete);
    strip_ansi(&String::from_utf8_lossy(&bytes))
}

/// Removes CSI escape sequences (`ESC [ params final-byte`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates are 0x20..=0x3F; the final byte is 0x40..=0x7E.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Starting
// ---------------------------------------------------------------------------------------------

fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh `<repo>/target/e2e/run-<pid>-<n>/`: unique across parallel tests and test binaries.
pub fn new_run_dir(repo: &Path) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    static CLEANUP: Once = Once::new();
    let e2e = repo.join("target/e2e");
    CLEANUP.call_once(|| clean_up_dead_runs(&e2e));
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = e2e.join(format!("run-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir); // a leftover from an earlier run with the same pid
    fs::create_dir_all(&dir).expect("create target/e2e run dir");
    dir
}

/// Cleans up after earlier test processes that are gone (killed, or interrupted with Ctrl-C,
/// which does not reach wrangler's separate process group): stops their leftover wrangler
/// groups, then removes their `.pgid` files and run directories. The latest logs stay
/// inspectable until the next run.
fn clean_up_dead_runs(e2e: &Path) {
    for entry in fs::read_dir(e2e).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Names are `run-<test pid>-<n>` (directory) and `run-<test pid>-<n>.pgid`.
        let owner_gone = name
            .strip_prefix("run-")
            .and_then(|rest| rest.split('-').next()?.parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if !owner_gone {
            continue; // not ours, or its test process is still running
        }
        if name.ends_with(".pgid") {
            kill_leftover_group(&entry.path());
            let _ = fs::remove_file(entry.path());
        } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// SIGKILLs the group named in a stale `.pgid` file, but only if every live member still looks
/// like part of a wrangler tree (or of a browser test's driver and Chromium): the number may
/// have been reused by an unrelated group.
fn kill_leftover_group(pgid_file: &Path) {
    let Some(pgid) = fs::read_to_string(pgid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|pgid| *pgid > 1)
    else {
        return;
    };
    let members = process_group_members(pgid);
    let ours = |cmd: &String| {
        [
            "wrangler",
            "workerd",
            "esbuild",
            "serve.mjs",
            "driver.mjs",
            "chromium",
        ]
        .iter()
        .any(|n| cmd.contains(n))
    };
    if !members.is_empty() && members.iter().all(|(_, cmd)| ours(cmd)) {
        signal_group(pgid, SIGKILL);
    }
}

/// dotenv text for wrangler's parser (dotenv 16 + dotenv-expand 12): double-quoted values in
/// which only `\n`/`\r` are unescaped and `$NAME` would be expanded, so `$` is written `\$`.
/// That parser has no escape for `"` or `\`, so such values are rejected.
fn dotenv(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            assert!(
                !v.contains('"') && !v.contains('\\'),
                "secret {k}: wrangler's dotenv parser cannot represent '\"' or '\\' in a value"
            );
            let escaped = v
                .replace('\n', "\\n")
                .replace('\r', "\\r")
                .replace('$', "\\$");
            format!("{k}=\"{escaped}\"\n")
        })
        .collect()
}

/// `original` (a wrangler.toml) without its `[build]` table, with `main` and the static assets'
/// `directory` made absolute, written into the run directory. Without a build command wrangler does not watch `src/`: its watcher
/// otherwise re-ran the (skipped) build about a second after start and reloaded the worker,
/// failing whatever request was in flight with 503 "Your worker restarted mid-request".
fn write_test_config(original: &Path, run_dir: &Path) -> PathBuf {
    let base = original.parent().expect("wrangler.toml has a directory");
    let original =
        fs::read_to_string(original).unwrap_or_else(|e| panic!("read {}: {e}", original.display()));
    let mut table = String::new();
    let mut config = String::new();
    for line in original.lines() {
        if line.starts_with('[') {
            table = line.trim().to_string();
        }
        if table == "[build]" {
            continue;
        }
        // Paths relative to the original file: `main`, and the static assets' directory.
        let path = match (
            line.strip_prefix("main = "),
            line.strip_prefix("directory = "),
        ) {
            (Some(main), _) => Some(("main", main)),
            (None, Some(dir)) if table == "[assets]" => Some(("directory", dir)),
            _ => None,
        };
        match path {
            Some((key, value)) => {
                let absolute = base.join(value.trim().trim_matches('"'));
                config.push_str(&format!("{key} = {:?}\n", absolute.to_string_lossy()));
            }
            None => {
                config.push_str(line);
                config.push('\n');
            }
        }
    }
    let path = run_dir.join("wrangler.toml");
    fs::write(&path, config).expect("write the test wrangler.toml");
    path
}

fn wrangler_command(repo: &Path, run_dir: &Path, persist: &Path, opts: &WorkerOptions) -> Command {
    let env_file = run_dir.join("secrets.env");
    let original = opts
        .config
        .clone()
        .unwrap_or_else(|| repo.join("wrangler.toml"));
    let config = write_test_config(&original, run_dir);
    // The pinned Node 22 from package.json (the npm package `node`): wrangler 4.164 needs it,
    // and the machine's own Node may be older.
    let mut cmd = Command::new(repo.join(PINNED_NODE));
    cmd.current_dir(repo)
        .arg("node_modules/wrangler/bin/wrangler.js")
        .args([
            "dev",
            "--config",
            &config.to_string_lossy(),
            "--ip",
            "127.0.0.1",
            // Port 0: workerd binds a port the kernel picks and wrangler's ready line names it.
            // A number chosen here and handed over would be free only until someone else took
            // it (two workers started at once were once given the same one).
            "--port",
            "0",
            "--inspector-port",
            "0",
        ])
        .arg("--show-interactive-dev-session=false")
        .arg("--persist-to")
        .arg(persist)
        // Always pass an env file: then wrangler never reads a developer's .dev.vars or .env,
        // which may hold real keys.
        .arg("--env-file")
        .arg(&env_file);
    for (k, v) in &opts.vars {
        cmd.arg("--var").arg(format!("{k}:{v}"));
    }
    for (k, v) in [
        ("SKIP_WORKER_BUILD", "1"),
        ("WRANGLER_SEND_METRICS", "false"),
        ("WRANGLER_SEND_ERROR_REPORTS", "false"),
        ("CLOUDFLARE_CF_FETCH_ENABLED", "false"),
        ("CI", "true"),
        ("NO_COLOR", "1"),
        ("FORCE_COLOR", "0"),
    ] {
        cmd.env(k, v);
    }
    // The level wrangler logs at by default, whatever the developer's shell says: the ready line
    // and the request log the start-up reads are not printed below it (WRANGLER_LOG=warn in
    // the shell made every start wait 90 s and fail).
    cmd.env("WRANGLER_LOG", "log");
    // wrangler also writes a debug log file per run, by default under ~/.config/.wrangler/logs.
    cmd.env("WRANGLER_LOG_PATH", run_dir.join("wrangler-debug"));
    // Every `wrangler dev` on the machine registers its worker, by name, in one shared directory
    // (~/.config/.wrangler/registry) and withdraws the entry when it stops: all test workers
    // share a name, and a developer's own `wrangler dev` of this project too. This one's is its own.
    cmd.env("WRANGLER_REGISTRY_PATH", run_dir.join("registry"));
    // wrangler can merge its own environment into the worker's bindings (when wrangler.toml
    // declares `secrets`, or with CLOUDFLARE_INCLUDE_PROCESS_ENV); keep the developer's shell
    // values of these names out so tests see exactly the configured ones.
    let names = DEFAULT_SECRETS.iter().map(|(k, _)| k.to_string());
    for k in names.chain(
        opts.secrets
            .iter()
            .chain(&opts.vars)
            .map(|(k, _)| k.clone()),
    ) {
        cmd.env_remove(k);
    }
    cmd.env_remove("CLOUDFLARE_INCLUDE_PROCESS_ENV");
    // Would select a `[env.<name>]` section of the config instead of the one under test.
    cmd.env_remove("CLOUDFLARE_ENV");
    cmd.env_remove("CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV");
    cmd
}

/// What a start-up waits for, in order, polling every 100 ms, all within 90 s:
///
/// 1. the ready line, `Ready on http://127.0.0.1:PORT`, in this instance's own log: the port its
///    workerd bound;
/// 2. `GET /health` on that port answering 200;
/// 3. the identity probe: a request for `/__harness/<token>`, a path made for this start, shows
///    up in this instance's own request log (wrangler logs each request's method and path).
///    Only this process writes that log, so the worker at the URL is ours.
///
/// Returns the base URL, or why the worker is not usable.
fn wait_ready(group: &mut ProcessGroup, log: &Path, run_dir: &Path) -> Result<String, String> {
    let mut wait = Wait {
        group,
        log,
        deadline: Instant::now() + READY_TIMEOUT,
    };
    let base_url = wait.until("its ready line", |log| {
        ready_url(log).ok_or("no ready line yet".into())
    })?;
    let health = format!("{base_url}/health");
    wait.until("GET /health to answer 200", |_| {
        match try_request("GET", &health, &[], b"", Duration::from_secs(5)) {
            Ok(r) if r.status == 200 => Ok(()),
            Ok(r) => Err(format!(
                "GET /health answered {}: {}",
                r.status,
                tail(&r.text(), 5)
            )),
            Err(e) => Err(format!("GET /health: {e}")),
        }
    })?;
    let probe = format!("/__harness/{}", start_token(run_dir));
    // Any status will do (our worker answers 404): what counts is whose log records it. Sent
    // once, so it may take whatever is left of the start-up time (a first request on a loaded
    // machine can take seconds), not a shorter timeout of its own.
    let left = wait.deadline.saturating_duration_since(Instant::now());
    try_request(
        "GET",
        &format!("{base_url}{probe}"),
        &[],
        b"",
        left.max(READY_POLL),
    )
    .map_err(|e| format!("GET {probe}: {e}"))?;
    let logged = format!(" {probe} ");
    wait.until("the identity probe in its own request log", |log| {
        log.lines()
            .any(|line| line.contains("[wrangler:info]") && line.contains(&logged))
            .then_some(())
            .ok_or(format!(
                "{probe} not logged: the worker at {base_url} is not this one"
            ))
    })?;
    Ok(base_url)
}

/// Polls a start-up condition against the instance's log until it holds, the process exits or
/// the deadline passes.
struct Wait<'a> {
    group: &'a mut ProcessGroup,
    log: &'a Path,
    deadline: Instant,
}

impl Wait<'_> {
    fn until<T>(
        &mut self,
        what: &str,
        mut step: impl FnMut(&str) -> Result<T, String>,
    ) -> Result<T, String> {
        loop {
            let last = match step(&read_log(self.log)) {
                Ok(found) => return Ok(found),
                Err(last) => last,
            };
            if let Some(status) = self.group.exit_status() {
                return Err(format!("wrangler {status} while waiting for {what}"));
            }
            if Instant::now() >= self.deadline {
                return Err(format!("no {what} after {READY_TIMEOUT:?}; last: {last}"));
            }
            thread::sleep(READY_POLL);
        }
    }
}

/// The URL in wrangler's first `Ready on http://127.0.0.1:PORT` line, once there is one.
fn ready_url(log: &str) -> Option<String> {
    let line = log
        .lines()
        .find(|l| l.contains("Ready on http://127.0.0.1:"))?;
    let start = line.find("http://127.0.0.1:")?;
    let url: String = line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let port = url.rsplit(':').next()?;
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(url)
}

/// A token no other start shares: this run directory's name (test process id and a counter)
/// and the time, so a worker left over from an earlier process cannot echo it either.
fn start_token(run_dir: &Path) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{name}-{nanos:x}")
}

// ---------------------------------------------------------------------------------------------
// Process group
// ---------------------------------------------------------------------------------------------

extern "C" {
    /// POSIX kill(2); a negative pid addresses a process group.
    fn kill(pid: i32, sig: i32) -> i32;
}

const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;

/// A child started as the leader of its own process group, with its `.pgid` file.
/// Dropping it stops the whole group. (The benchmark also runs its bare-workerd server in one.)
pub struct ProcessGroup {
    child: Child,
    /// The group's id (the leader's pid).
    pub pgid: i32,
    pgid_file: PathBuf,
}

impl ProcessGroup {
    /// Spawns `cmd` as a new group, stdout and stderr to `log_path`, its id in `pgid_file`.
    pub fn spawn(mut cmd: Command, log_path: &Path, pgid_file: &Path) -> ProcessGroup {
        let log = File::create(log_path).expect("create log file");
        let log2 = log.try_clone().expect("clone log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
        let pgid = child.id() as i32;
        // Guard against ever signalling our own group (pid 0) or init.
        assert!(pgid > 1, "unexpected child pid {pgid}");
        fs::write(pgid_file, pgid.to_string()).expect("write pgid file");
        ProcessGroup {
            child,
            pgid,
            pgid_file: pgid_file.to_path_buf(),
        }
    }

    /// `Some(description)` once the leader has exited.
    pub fn exit_status(&mut self) -> Option<String> {
        self.child
            .try_wait()
            .ok()
            .flatten()
            .map(|status| format!("exited: {status}"))
    }

    /// SIGINT to the group, up to 10 s for it to go, then SIGKILL and up to 30 s for the kernel
    /// to finish them (tests assert that nothing of the group survives a stop: on a loaded
    /// machine a killed process can take seconds to go, and the wait ends as soon as it has).
    fn stop(&mut self) {
        signal_group(self.pgid, SIGINT);
        if !self.wait_gone(SIGINT_GRACE) {
            signal_group(self.pgid, SIGKILL);
            self.wait_gone(SIGKILL_GRACE);
        }
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.pgid_file);
    }

    /// Waits until no live (non-zombie) process is left in the group.
    fn wait_gone(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let _ = self.child.try_wait(); // reap the leader so it stops counting
            if process_group_members(self.pgid).is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `sig` to process group `pgid` (> 1).
pub fn signal_group(pgid: i32, sig: i32) {
    // SAFETY: plain syscall; pgid > 1 is asserted at spawn, so this never targets our own group.
    unsafe {
        kill(-pgid, sig);
    }
}

/// A live (non-zombie) process, as /proc/PID/stat gives it.
pub struct LiveProcess {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
}

impl LiveProcess {
    /// Its command line, arguments joined by spaces (read only when asked: it is another file).
    pub fn cmdline(&self) -> String {
        let raw = fs::read(format!("/proc/{}/cmdline", self.pid)).unwrap_or_default();
        String::from_utf8_lossy(&raw)
            .replace('\0', " ")
            .trim()
            .to_string()
    }
}

/// Every live (non-zombie) process on the machine, from /proc.
pub fn live_processes() -> Vec<LiveProcess> {
    let mut processes = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state, ppid, pgrp, ...
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let number = |i: usize| fields.get(i).and_then(|f| f.parse::<i32>().ok());
        if let (Some(&state), Some(ppid), Some(pgrp)) = (fields.first(), number(1), number(2)) {
            if state != "Z" {
                processes.push(LiveProcess { pid, ppid, pgrp });
            }
        }
    }
    processes
}

/// Live processes in process group `pgid`, as (pid, command line).
pub fn process_group_members(pgid: i32) -> Vec<(i32, String)> {
    live_processes()
        .into_iter()
        .filter(|process| process.pgrp == pgid)
        .map(|process| (process.pid, process.cmdline()))
        .collect()
}
