//! What every family of the driver shares: reading a file a command is given and printing
//! a line of its output.

use std::path::Path;

use anyhow::Context;

/// A file the report reads.
pub(super) fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| path.display().to_string())
}

/// A line of the output: the report, or a sample.
pub(super) fn say(line: &str) {
    #[allow(clippy::print_stdout)] // the report is the program's output
    {
        println!("{line}");
    }
}
