//! Output that outlives its reader: `out!`, `outln!` and `errln!` write like
//! `print!`, `println!` and `eprintln!`, but ignore write errors.
//!
//! `rift run … | head` must not panic (the std print macros do on a closed
//! pipe) and must still stop its nodes and write its report. These macros
//! must never panic, block on or report a failed write.

/// `print!` that ignores a closed or failing stdout.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// `println!` that ignores a closed or failing stdout.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that ignores a closed or failing stderr.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub(crate) use {errln, out, outln};
