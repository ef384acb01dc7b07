//! Headless Chromium for the browser tests: `tests/browser/driver.mjs` (playwright-core driving
//! Debian's `/usr/bin/chromium`) runs in its own process group and answers one JSON command per
//! line. Chromium itself is started by Playwright as the leader of another group; both groups
//! are stopped when the [`Browser`] is dropped, even when the test failed, and their `.pgid`
//! files under `target/e2e/` let the test script kill them if the test process itself was killed.

use super::worker::{
    live_processes, new_run_dir, process_group_members, signal_group, tail, PINNED_NODE,
};
use serde_json::{json, Value};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// The longest one command may take (the driver's own waits, 60 s, are shorter).
const COMMAND_DEADLINE: Duration = Duration::from_secs(120);
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// Where Chromium is expected (Debian's package), unless `$CHROMIUM` says otherwise.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// A headless Chromium behind the driver.
pub struct Browser {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    driver_pgid: i32,
    chromium_pgid: Option<i32>,
    pgid_files: Vec<PathBuf>,
    log_path: PathBuf,
    next_id: u64,
}

impl Browser {
    /// Starts the driver and Chromium; panics with what to install if Chromium is missing.
    pub fn launch() -> Browser {
        let chromium = chromium_path();
        assert!(
            chromium.is_file(),
            "{} is missing: the browser tests need Debian's Chromium (./scripts/test.sh installs \
             it: apt-get install -y chromium)",
            chromium.display()
        );
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let run_dir = new_run_dir(&repo);
        let log_path = run_dir.join("browser.log");
        let log = File::create(&log_path).expect("create browser log");
        let mut child = Command::new(repo.join(PINNED_NODE))
            .current_dir(&repo)
            .arg("tests/browser/driver.mjs")
            .env("CHROMIUM", &chromium)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start the browser driver (node tests/browser/driver.mjs)");
        let driver_pgid = child.id() as i32;
        assert!(driver_pgid > 1);
        let driver_file = run_dir.with_extension("pgid");
        fs::write(&driver_file, driver_pgid.to_string()).expect("write pgid file");
        let stdout = child.stdout.take().expect("driver stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut browser = Browser {
            stdin: child.stdin.take(),
            child,
            lines,
            driver_pgid,
            chromium_pgid: None,
            pgid_files: vec![driver_file],
            log_path,
            next_id: 0,
        };
        let ready = browser.next_line();
        let ready: Value = serde_json::from_str(&ready).unwrap_or_default();
        assert_eq!(
            ready["event"],
            "ready",
            "driver: {ready}\n{}",
            browser.log()
        );
        // Playwright starts Chromium as a child of the driver, leading its own process group.
        let chromium_group = live_processes()
            .into_iter()
            .find(|p| p.ppid == driver_pgid && p.pgrp > 1 && p.cmdline().contains("chromium"))
            .map(|p| p.pgrp);
        if let Some(group) = chromium_group {
            let file = run_dir.with_file_name(format!(
                "{}-chromium.pgid",
                run_dir.file_name().unwrap_or_default().to_string_lossy()
            ));
            fs::write(&file, group.to_string()).expect("write pgid file");
            browser.pgid_files.push(file);
            browser.chromium_pgid = Some(group);
        }
        browser
    }

    fn log(&self) -> String {
        tail(&fs::read_to_string(&self.log_path).unwrap_or_default(), 40)
    }

    fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(COMMAND_DEADLINE) {
            Ok(line) => line,
            Err(_) => panic!(
                "the browser driver did not answer within {COMMAND_DEADLINE:?}\n{}",
                self.log()
            ),
        }
    }

    /// Runs one driver command; panics with the driver's error (and its log) if it failed.
    pub fn call(&mut self, cmd: &str, mut args: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        args["cmd"] = json!(cmd);
        args["id"] = json!(id);
        let stdin = self.stdin.as_mut().expect("driver stdin");
        writeln!(stdin, "{args}").expect("write to the browser driver");
        stdin.flush().expect("flush the browser driver");
        loop {
            let line = self.next_line();
            let answer: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("driver wrote {line:?}: {e}\n{}", self.log()));
            if answer["id"] != json!(id) {
                continue;
            }
            if answer["ok"] == json!(true) {
                return answer["value"].clone();
            }
            panic!(
                "browser command {cmd} failed: {}\n--- driver log ---\n{}",
                answer["error"].as_str().unwrap_or_default(),
                self.log()
            );
        }
    }

    /// Opens `url` in a fresh browser context (a 760 × 900 window), with or without microphone
    /// permission.
    pub fn open(&mut self, url: &str, microphone: bool) -> Value {
        self.call(
            "open",
            json!({ "url": url, "microphone": microphone, "width": 760, "height": 900 }),
        )
    }

    /// Clicks the button with this accessible name.
    pub fn click(&mut self, name: &str) {
        self.call("click", json!({ "name": name }));
    }

    /// Types `text` into the labelled text box and presses Enter (keyboard only).
    pub fn say(&mut self, text: &str) {
        self.call("say", json!({ "text": text }));
    }

    /// The page's status, problem, controls and transcript rows.
    pub fn state(&mut self) -> Value {
        self.call("state", json!({}))
    }

    /// Waits until the page satisfies `condition` (see the driver's `satisfies`); returns the
    /// page's state then.
    pub fn wait_for(&mut self, condition: Value) -> Value {
        self.call("waitFor", json!({ "condition": condition }))
    }

    /// Everything that went wrong in the page so far: console errors, uncaught exceptions,
    /// failed requests.
    pub fn problems(&mut self) -> Vec<String> {
        serde_json::from_value(self.call("problems", json!({}))).unwrap_or_default()
    }

    /// axe-core's violations for the current page.
    pub fn accessibility_violations(&mut self) -> Vec<Value> {
        serde_json::from_value(self.call("axe", json!({}))).unwrap_or_default()
    }

    pub fn screenshot(&mut self, path: &Path) {
        fs::create_dir_all(path.parent().expect("a directory")).expect("create screenshot dir");
        self.call(
            "screenshot",
            json!({ "path": path.to_string_lossy(), "fullPage": true }),
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing stdin asks the driver to close Chromium and exit.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        let groups: Vec<i32> = std::iter::once(self.driver_pgid)
            .chain(self.chromium_pgid)
            .collect();
        let gone = |groups: &[i32]| groups.iter().all(|g| process_group_members(*g).is_empty());
        while Instant::now() < deadline {
            let _ = self.child.try_wait();
            if gone(&groups) {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        for signal in [SIGTERM, SIGKILL] {
            let _ = self.child.try_wait();
            if gone(&groups) {
                break;
            }
            for group in &groups {
                signal_group(*group, signal);
            }
            let wait_until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < wait_until && !gone(&groups) {
                let _ = self.child.try_wait();
                thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.wait();
        for file in &self.pgid_files {
            let _ = fs::remove_file(file);
        }
    }
}
