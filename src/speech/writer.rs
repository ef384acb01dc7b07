//! Output: whitespace normalisation.

use super::chars::{closes, ends_clause, opens};

/// Collects decided text. Whitespace, table pipes and removals between two visible characters
/// are remembered as a `Gap` and written as one separator only when the next visible
/// character arrives, so nothing is doubled and nothing trails.
#[derive(Debug, Default)]
pub(super) struct Writer {
    /// Decided text not yet returned by `push`.
    pub(super) text: String,
    /// Whether anything visible was written: leading whitespace is dropped.
    started: bool,
    /// The last visible character written.
    last: char,
    gap: Gap,
}

/// What lies between the last visible character and the next one.
#[derive(Debug, Default, Clone, Copy)]
struct Gap {
    space: bool,
    newline: bool,
    pipe: bool,
    /// Markup or emoji was removed here, so a space may be an artefact of the removal.
    removed: bool,
}

impl Writer {
    pub(super) fn text(&mut self, c: char) {
        if self.started {
            let separator = self.separator(c);
            self.text.push_str(separator);
        }
        self.text.push(c);
        self.last = c;
        self.started = true;
        self.gap = Gap::default();
    }

    pub(super) fn separator(&self, next: char) -> &'static str {
        let gap = self.gap;
        if gap.newline {
            "\n"
        } else if gap.pipe {
            if ends_clause(self.last) {
                " "
            } else {
                ", "
            }
        } else if !gap.space || (gap.removed && (closes(next) || opens(self.last))) {
            ""
        } else {
            " "
        }
    }

    pub(super) fn space(&mut self) {
        self.gap.space = true;
    }

    pub(super) fn newline(&mut self) {
        self.gap.newline = true;
    }

    pub(super) fn pipe(&mut self) {
        self.gap.pipe = true;
    }

    pub(super) fn removed(&mut self) {
        self.gap.removed = true;
    }

    /// An emoji: silent, but it still separates the words around it.
    pub(super) fn soft_space(&mut self) {
        self.gap.space = true;
        self.gap.removed = true;
    }
}
