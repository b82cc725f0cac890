//! Plan errors: every one names the file, 1-based line and column, the
//! dotted field and what was expected. Formatting only; no parsing here.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The plan file could not be read.
    #[error("{}: cannot read plan: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}:{line}:{column}: invalid TOML: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// Valid TOML, but not a valid plan. `field` is dotted: `step[2].target`
    /// (steps count from 0 in file order).
    #[error("{}:{line}:{column}: {field}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
    /// More than one problem, in file order; displayed one per line.
    #[error("{}", Lines(errors))]
    Many { errors: Vec<PlanError> },
}

impl PlanError {
    /// Every single error, in file order (one for all but `Many`).
    pub fn errors(&self) -> Vec<&PlanError> {
        match self {
            PlanError::Many { errors } => errors.iter().flat_map(|e| e.errors()).collect(),
            other => vec![other],
        }
    }
}

struct Lines<'a>(&'a [PlanError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of byte `offset` in `src`.
/// Offsets past the end or inside a character are clamped, never a panic.
pub(crate) fn position(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let src = "ab\nçd = 1\n";
        assert_eq!(position(src, 0), (1, 1));
        assert_eq!(position(src, 1), (1, 2));
        assert_eq!(position(src, 3), (2, 1));
        // `d` follows a two-byte character: byte 5, column 2.
        assert_eq!(position(src, 5), (2, 2));
        // Inside `ç` and past the end: clamped.
        assert_eq!(position(src, 4), (2, 1));
        assert_eq!(position(src, 999), (3, 1));
    }

    #[test]
    fn display_is_file_line_column_field_message() {
        let e = PlanError::Invalid {
            path: "experiments/x.toml".into(),
            line: 7,
            column: 8,
            field: "cluster.size".into(),
            message: "expected a whole number from 1 to 64, found \"five\"".into(),
        };
        assert_eq!(
            e.to_string(),
            "experiments/x.toml:7:8: cluster.size: expected a whole number from 1 to 64, found \"five\""
        );
        let many = PlanError::Many {
            errors: vec![
                PlanError::Syntax {
                    path: "a.toml".into(),
                    line: 1,
                    column: 2,
                    message: "m".into(),
                },
                e,
            ],
        };
        assert_eq!(many.errors().len(), 2);
        assert!(many
            .to_string()
            .starts_with("a.toml:1:2: invalid TOML: m\nexperiments/x.toml:7:8:"));
    }
}
