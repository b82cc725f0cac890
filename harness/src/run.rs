//! The experiment runner.
