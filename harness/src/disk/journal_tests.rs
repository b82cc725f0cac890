//! Unit tests of the journal: pure file system work on temp dirs.

use super::*;
