//! Where the user's lines come from: a script file, or the `you> ` prompt on stdin.

use std::io::{self, BufRead};
use std::path::Path;

use crate::turn::print_flush;

/// Where the user's lines come from.
pub enum Input {
    /// The remaining non-empty lines of `--script`.
    Script(std::vec::IntoIter<String>),
    /// The `you> ` prompt, until end of input or `/quit`.
    Stdin,
}

impl Input {
    pub fn open(script: Option<&Path>) -> Result<Input, String> {
        let Some(path) = script else {
            return Ok(Input::Stdin);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the script {}: {e}", path.display()))?;
        let lines: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        Ok(Input::Script(lines.into_iter()))
    }

    pub fn is_script(&self) -> bool {
        matches!(self, Input::Script(_))
    }

    /// The next thing the user says; None at the end (end of script, EOF or `/quit`).
    pub fn next_line(&mut self) -> Option<String> {
        match self {
            Input::Script(lines) => {
                let line = lines.next()?;
                say!("you> {line}");
                Some(line)
            }
            Input::Stdin => loop {
                print_flush("you> ");
                let mut line = String::new();
                match io::stdin().lock().read_line(&mut line) {
                    Ok(0) | Err(_) => {
                        say!();
                        return None;
                    }
                    Ok(_) => match line.trim() {
                        "" => continue,
                        "/quit" => return None,
                        text => return Some(text.to_string()),
                    },
                }
            },
        }
    }
}
