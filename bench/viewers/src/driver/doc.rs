//! The driver's commands on the generated blocks of `docs/benchmarks.md`: `doc` writes or
//! replaces one, stamped with the raw results' blob id and the commit measured
//! ([`crate::docblock`]), as `report` does through [`put`]; `stale` lists the blocks
//! whose measured paths changed after their run ([`crate::staleness`]). Both ask git.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use super::common::{read, say};
use crate::docblock::{self, Stamp};
use crate::staleness;

/// A generated block to write: what `doc` is given, and what `report` gives it.
#[derive(Debug, clap::Args)]
pub(super) struct Block {
    /// The script that measured (`bench/edge.sh`).
    #[arg(long)]
    pub(super) script: String,
    /// The section's `## ` heading, or its start.
    #[arg(long)]
    pub(super) heading: String,
    /// The run's raw results (JSON).
    #[arg(long)]
    pub(super) results: PathBuf,
    /// The section as the report wrote it, heading line first (default: the doc's).
    #[arg(long)]
    pub(super) section: Option<PathBuf>,
    /// A new section goes after this one (its heading or the start of it).
    #[arg(long)]
    pub(super) after: Option<String>,
    /// The commit measured (default: HEAD).
    #[arg(long)]
    pub(super) measured: Option<String>,
    /// Results committed before they left the tree: the blob is the file's at the
    /// measured commit, which must hold it, and no dirty check is made.
    #[arg(long)]
    pub(super) committed: bool,
}

/// `doc`: writes `block` in the doc at `docs`, its text the file `--section` names (default:
/// the doc's own).
pub(super) fn doc(docs: &Path, block: Block) -> anyhow::Result<()> {
    let text = block.section.as_ref().map(|p| read(p)).transpose()?;
    put(docs, block, text)
}

/// `stale`: prints each block of the doc at `docs` with its verdict (current or STALE) and
/// the first commits since its run that touch what it measures; with `check`, fails when
/// a block is stale.
pub(super) fn stale(docs: &Path, check: bool) -> anyhow::Result<()> {
    let doc = std::fs::read_to_string(docs).with_context(|| docs.display().to_string())?;
    let mut stale = 0;
    for block in docblock::blocks(&doc) {
        let s = &block.stamp;
        let range = format!("{}..HEAD", s.measured);
        let mut log = vec!["log", "--format=%h %<(72,trunc)%s", &range, "--"];
        let paths = staleness::measured_paths(&s.script);
        log.extend(paths.iter().map(String::as_str));
        let changes = git(&log)?;
        let n = changes.lines().count();
        let short = s.measured.get(..10).unwrap_or(&s.measured);
        let dirty = if s.dirty {
            " (plus changes not committed)"
        } else {
            ""
        };
        let verdict = if n == 0 && !s.dirty {
            "current"
        } else {
            "STALE"
        };
        let script = if block.heading.contains(&s.script) {
            String::new()
        } else {
            format!(" ({})", s.script)
        };
        say(&format!(
            "{verdict}: {}{script}, measured {short}{dirty}, {n} commit(s) since touch what it measures",
            block.heading
        ));
        for line in changes.lines().take(3) {
            say(&format!("    {line}"));
        }
        if verdict != "current" {
            stale += 1;
        }
    }
    if check && stale > 0 {
        bail!("{stale} benchmark(s) stale");
    }
    Ok(())
}

/// Writes or replaces `block` in the doc at `docs`, stamped with the raw results' blob id
/// and the commit measured; its text is `section` (default: the doc's own).
pub(super) fn put(docs: &Path, block: Block, section: Option<String>) -> anyhow::Result<()> {
    let Block {
        script,
        heading,
        results,
        after,
        measured,
        committed,
        ..
    } = block;
    let doc = std::fs::read_to_string(docs).unwrap_or_default();
    let measured = git(&[
        "rev-parse",
        "--verify",
        &format!("{}^{{commit}}", measured.as_deref().unwrap_or("HEAD")),
    ])?;
    let path = results.to_string_lossy().into_owned();
    let (blob, dirty) = if committed {
        let spec = format!("{measured}:{path}");
        (git(&["rev-parse", "--verify", &spec])?, false)
    } else {
        let blob = git(&["hash-object", "--", &path])?;
        let mut status = vec!["status", "--porcelain", "--"];
        let paths = staleness::measured_paths(&script);
        status.extend(paths.iter().map(String::as_str));
        (blob, !git(&status)?.is_empty())
    };
    let date = raw_date(&results, committed.then_some(measured.as_str()))?;
    let stamp = Stamp {
        script,
        results: path,
        blob,
        measured,
        dirty,
        date,
    };
    let out = docblock::put(&doc, &heading, &stamp, section.as_deref(), after.as_deref())?;
    std::fs::write(docs, out).with_context(|| format!("writing {}", docs.display()))
}

/// The `date` the raw results give (their top-level `date`, when they have one); read from
/// `commit` when given, else from the file.
fn raw_date(path: &Path, commit: Option<&str>) -> anyhow::Result<Option<String>> {
    let text = match commit {
        Some(c) => git(&["show", &format!("{c}:{}", path.display())])?,
        None => std::fs::read_to_string(path).with_context(|| path.display().to_string())?,
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    Ok(value
        .get("date")
        .and_then(|d| d.as_str())
        .filter(|d| !d.is_empty() && !d.contains(char::is_whitespace))
        .map(str::to_owned))
}

/// git's standard output, trimmed; an error with its standard error when it fails.
fn git(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .args(args)
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
