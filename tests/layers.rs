//! The layering rule, checked on the source: a module imports only from layers below it.
//!
//! Every file under `src/` (the native binaries in `src/bin/` are crates of their own) is read,
//! comments and literals are blanked, and each path that leaves its top-level module
//! (`crate::x…`, `use crate::{x…, y…}`, or a `super::` chain that climbs to the crate root) is
//! checked against [`LAYERS`]. A new top-level module fails here until it is given a layer.
//! No worker, no network: this runs in milliseconds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test fails by panicking

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The layers, highest first; each line is one layer and the top-level modules in it. A module
/// may import its own top-level module and any layer below its own, never one above it nor
/// another module of its layer (`store` and `engine` are peers and stay apart), except that
/// leaves may import other leaves.
const LAYERS: &[(&str, &[&str])] = &[
    ("lib", &["lib"]),
    ("edge", &["edge"]),
    ("conversation", &["conversation"]),
    ("turn", &["turn"]),
    ("store | engine", &["store", "engine"]),
    ("llm", &["llm"]),
    ("layercode", &["layercode"]),
    (
        "leaves",
        &[
            "config",
            "deadline",
            "error",
            "history",
            "lossy_json",
            "models",
            "placeholders",
            "redact",
            "retention",
            "signature",
            "speech",
            "sse",
            "summary",
            "tools",
            "upstream",
            // `tests/common/rng.rs`, declared in lib.rs for unit tests.
            "test_rng",
        ],
    ),
];

const LEAVES: usize = LAYERS.len() - 1;

/// The layer index of a top-level module, or `None` for one the table does not know.
fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// Why `from` may not import `to` (both top-level modules), or `None` if it may.
fn forbidden(from: &str, to: &str) -> Option<String> {
    if from == to || from == "lib" {
        return None;
    }
    let Some(to_layer) = layer_of(to) else {
        return Some(format!(
            "`{to}` is not in the layer table of tests/layers.rs"
        ));
    };
    let from_layer = layer_of(from)?; // an unknown importer is reported once, per file
    let allowed = from_layer < to_layer || (from_layer == LEAVES && to_layer == LEAVES);
    if allowed {
        return None;
    }
    let (from_name, to_name) = (LAYERS[from_layer].0, LAYERS[to_layer].0);
    Some(if from_layer == to_layer {
        format!("`{from}` and `{to}` are peers in layer `{from_name}`: neither imports the other")
    } else {
        format!(
            "`{from}` (layer `{from_name}`) may not import `{to}` (layer `{to_name}`, above it)"
        )
    })
}

/// The module path of a file under `src/`: `llm/gemini/model.rs` → `[llm, gemini, model]`,
/// `llm/mod.rs` → `[llm]`, `lib.rs` → `[]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" && !(parts.is_empty() && stem == "lib") {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// `source` with comments, string and char literals replaced by spaces (line breaks kept), so
/// that only code is searched.
fn blank_non_code(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let prev_ident = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && !prev_ident
            && matches!(next, Some('"') | Some('#'))
            && raw_string_hashes(&chars, i + 1).is_some()
        {
            let hashes = raw_string_hashes(&chars, i + 1).unwrap_or(0);
            let start = i;
            i += 2 + hashes; // r, the hashes, the quote
            while i < chars.len() {
                if chars[i] == '"' && (0..hashes).all(|k| chars.get(i + 1 + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            out.extend(chars[start..i.min(chars.len())].iter().map(|&c| blank(c)));
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                let step = if chars[i] == '\\' { 2 } else { 1 };
                for k in 0..step {
                    if let Some(&c) = chars.get(i + k) {
                        out.push(blank(c));
                    }
                }
                i += step;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\u{..}'); a lifetime ('a) has no closing quote.
            let start = i;
            i += if next == Some('\\') { 3 } else { 2 };
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.extend(chars[start..i.min(chars.len())].iter().map(|&c| blank(c)));
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// At `chars[at]`, after an `r`: the number of `#` before the opening quote of a raw string.
fn raw_string_hashes(chars: &[char], at: usize) -> Option<usize> {
    let hashes = chars[at..].iter().take_while(|&&c| c == '#').count();
    (chars.get(at + hashes) == Some(&'"')).then_some(hashes)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The identifier starting at `at` (after spaces), and where it ends.
fn ident_at(code: &[char], mut at: usize) -> (String, usize) {
    while at < code.len() && code[at].is_whitespace() {
        at += 1;
    }
    let start = at;
    while at < code.len() && is_ident(code[at]) {
        at += 1;
    }
    (code[start..at].iter().collect(), at)
}

/// The top-level modules a path names right after the crate root at `at`: one identifier, or
/// the first identifier of each item of a `{…}` group.
fn roots_at(code: &[char], at: usize) -> Vec<String> {
    let mut i = at;
    while i < code.len() && code[i].is_whitespace() {
        i += 1;
    }
    if code.get(i) != Some(&'{') {
        let (name, _) = ident_at(code, i);
        return vec![name];
    }
    let mut names = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    while i < code.len() {
        match code[i] {
            '{' => {
                depth += 1;
                item_start = depth == 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => item_start = true,
            c if item_start && is_ident(c) => {
                let (name, end) = ident_at(code, i);
                names.push(name);
                item_start = false;
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    names
}

/// One import that breaks the rule.
#[derive(Debug, PartialEq)]
struct Violation {
    file: String,
    line: usize,
    path: String,
    why: String,
}

/// Every forbidden import in one file; `relative` is its path under `src/`.
fn check_file(relative: &Path, source: &str) -> Vec<Violation> {
    let file = format!("src/{}", relative.display());
    let module = module_path(relative);
    let own = module.first().map_or("lib", String::as_str).to_string();
    let mut found = Vec::new();
    if layer_of(&own).is_none() {
        found.push(Violation {
            file: file.clone(),
            line: 1,
            path: own.clone(),
            why: format!("the top-level module `{own}` has no layer: add it to LAYERS"),
        });
        return found;
    }
    let code: Vec<char> = blank_non_code(source).chars().collect();
    let line_of = |at: usize| 1 + code[..at].iter().filter(|&&c| c == '\n').count();
    // Inline `mod name {` blocks deepen the module path, which `super::` climbs.
    let mut open_mods: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < code.len() {
        let starts_word = i == 0 || !(is_ident(code[i - 1]) || code[i - 1] == '$');
        match code[i] {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if open_mods.last() == Some(&depth) {
                    open_mods.pop();
                }
            }
            'm' if starts_word && code[i..].starts_with(&['m', 'o', 'd', ' ']) => {
                let (_, end) = ident_at(&code, i + 4);
                let mut j = end;
                while j < code.len() && code[j].is_whitespace() {
                    j += 1;
                }
                if code.get(j) == Some(&'{') {
                    open_mods.push(depth);
                }
            }
            _ => {}
        }
        let crate_path = starts_word && code[i..].starts_with(&['c', 'r', 'a', 't', 'e', ':', ':']);
        let super_path = starts_word && code[i..].starts_with(&['s', 'u', 'p', 'e', 'r', ':', ':']);
        if crate_path || super_path {
            let mut at = i;
            let roots = if crate_path {
                Some(roots_at(&code, at + 7))
            } else {
                let mut climbs = 0;
                while code[at..].starts_with(&['s', 'u', 'p', 'e', 'r', ':', ':']) {
                    climbs += 1;
                    at += 7;
                }
                // Below the crate root the path stays inside this file's top-level module.
                (climbs >= module.len() + open_mods.len()).then(|| roots_at(&code, at))
            };
            for root in roots.unwrap_or_default() {
                if root.is_empty() || root == "self" || root == "super" {
                    continue;
                }
                if let Some(why) = forbidden(&own, &root) {
                    found.push(Violation {
                        file: file.clone(),
                        line: line_of(i),
                        path: format!("crate::{root}"),
                        why,
                    });
                }
            }
            i = at.max(i + 1);
            continue;
        }
        i += 1;
    }
    found
}

/// Every `.rs` file under `dir`, except the native binaries' own crates in `src/bin/`.
fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read src/")
        .map(|e| e.expect("read a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "bin") && path.parent().is_some_and(is_src) {
                continue;
            }
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

fn is_src(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "src")
}

fn report(violations: &[Violation]) -> String {
    let mut text =
        String::from("forbidden imports (a module imports only from layers below it):\n");
    for v in violations {
        let _ = writeln!(text, "  {}:{}: {}: {}", v.file, v.line, v.path, v.why);
    }
    text.push_str("\nThe layers, highest first:\n");
    for (name, modules) in LAYERS {
        let _ = writeln!(text, "  {name:<15} {}", modules.join(", "));
    }
    text
}

#[test]
fn every_module_imports_only_from_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 20,
        "found only {} files under src/",
        files.len()
    );
    let mut violations = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for path in &files {
        let relative = path.strip_prefix(&src).expect("a path under src/");
        let source = std::fs::read_to_string(path).expect("read a source file");
        seen.extend(module_path(relative).first().cloned());
        violations.extend(check_file(relative, &source));
    }
    assert!(violations.is_empty(), "{}", report(&violations));
    // A module the table names that no longer exists is a stale table.
    for (_, modules) in LAYERS {
        for module in *modules {
            let declared_elsewhere = matches!(*module, "lib" | "test_rng");
            assert!(
                declared_elsewhere || seen.contains(*module),
                "LAYERS names `{module}`, which is not under src/"
            );
        }
    }
}

/// The check itself: it must catch what the rule forbids, and only that.
#[test]
fn the_check_catches_forbidden_imports_and_only_those() {
    let check = |file: &str, source: &str| -> Vec<String> {
        check_file(Path::new(file), source)
            .into_iter()
            .map(|v| format!("{}:{} {}", v.file, v.line, v.path))
            .collect()
    };
    let none: Vec<String> = Vec::new();
    // Upward, in every spelling.
    assert_eq!(
        check("llm/http.rs", "use std::rc::Rc;\nuse crate::engine::Clock;"),
        ["src/llm/http.rs:2 crate::engine"]
    );
    assert_eq!(
        check(
            "llm/http.rs",
            "use crate::{\n    sse::SseDecoder,\n    turn::{a, b},\n};"
        ),
        ["src/llm/http.rs:1 crate::turn"]
    );
    assert_eq!(
        check(
            "tools/http.rs",
            "fn f() { let _ = crate::edge::body::read_limited; }"
        ),
        ["src/tools/http.rs:1 crate::edge"]
    );
    assert_eq!(
        check("llm/http.rs", "use super::super::engine::Limits;"),
        ["src/llm/http.rs:1 crate::engine"]
    );
    // Inline `mod tests {` adds a level that `super::` climbs.
    assert_eq!(
        check(
            "tools/mod.rs",
            "mod tests {\n    use super::super::turn::X;\n}"
        ),
        ["src/tools/mod.rs:2 crate::turn"]
    );
    assert_eq!(
        check(
            "tools/mod.rs",
            "mod tests {\n    use super::*;\n    use super::super::history::Role;\n}"
        ),
        none
    );
    // Peers stay apart.
    assert_eq!(
        check("store/turns.rs", "use crate::engine::Limits;"),
        ["src/store/turns.rs:1 crate::engine"]
    );
    // A top-level module the table does not know, as importer or imported.
    assert_eq!(
        check("newthing.rs", "use crate::config::Config;"),
        ["src/newthing.rs:1 newthing"]
    );
    assert_eq!(
        check("turn/mod.rs", "use crate::newthing::X;"),
        ["src/turn/mod.rs:1 crate::newthing"]
    );
    // Allowed: downward, leaf to leaf, within a module, from lib.rs; comments and strings.
    assert_eq!(
        check(
            "edge/agent.rs",
            "use crate::edge::body;\nuse crate::conversation::Route;\nuse crate::signature;"
        ),
        none
    );
    assert_eq!(
        check("config.rs", "use crate::tools::{self, ToolEntry};"),
        none
    );
    assert_eq!(
        check("lib.rs", "pub mod edge;\nuse crate::edge::agent;"),
        none
    );
    assert_eq!(
        check(
            "llm/mod.rs",
            "// use crate::engine;\n/* crate::turn */ let s = \"crate::edge\";\nlet r = r#\"crate::turn\"#;\nlet c = '\"'; fn f<'a>(x: &'a str) {}\nuse crate::sse;"
        ),
        none
    );
    // The message names the file, the line, the import and the rule.
    let violations = check_file(Path::new("llm/http.rs"), "use crate::engine::Clock;");
    let text = report(&violations);
    assert!(text.contains("src/llm/http.rs:1: crate::engine: `llm` (layer `llm`) may not import `engine` (layer `store | engine`, above it)"), "{text}");
}
