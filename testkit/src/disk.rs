//! A full disk for real: a small tmpfs the test mounts over a temporary directory, so
//! writes past its size fail with ENOSPC as they would on a full disk. Unmounted (and the
//! directory removed) when the [`SmallDisk`] is dropped. Needs root (CAP_SYS_ADMIN), as
//! CI has.

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};

/// A tmpfs of a fixed size mounted on a temporary directory.
#[derive(Debug)]
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    ensure!(
        output.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

impl SmallDisk {
    /// A disk of `bytes` (rounded up to whole pages by the kernel).
    pub fn new(bytes: u64) -> Result<Self> {
        let dir = tempfile::tempdir().context("making the mount point")?;
        let path = dir.path().to_str().context("a UTF-8 temporary path")?;
        run(
            "mount",
            &["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs", path],
        )
        .context("mounting a small tmpfs (needs root)")?;
        Ok(SmallDisk { dir })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if let Some(path) = self.dir.path().to_str() {
            // Lazily: a file still open somewhere must not keep the mount behind.
            let _ = run("umount", &["-l", path]);
        }
    }
}
