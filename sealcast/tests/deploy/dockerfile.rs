//! The `Dockerfile` as plain text, read as its instructions (continuation lines joined,
//! comments dropped). No interpreter: the checks look for the few lines they care about.
//!
//! The `Dockerfile` has two stages: a builder that compiles the binary and the runtime
//! stage. The image the compose cluster runs is that runtime stage with a binary built on
//! the host (`deploy/docker/prebuilt.Dockerfile`, which `deploy/docker/prebuilt.sh` writes):
//! [`instructions`] reads that variant, the one stage most checks are about; [`stages`]
//! reads the `Dockerfile` itself.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

/// One instruction: its keyword (upper case) and the rest of its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instruction {
    pub(crate) keyword: String,
    pub(crate) args: String,
}

/// The image the compose cluster runs, for project directory `dir`: its `Dockerfile`'s
/// runtime stage with the host's binary, `deploy/docker/prebuilt.Dockerfile`.
pub(crate) fn instructions(dir: &Path) -> Result<Vec<Instruction>> {
    let path = dir.join(PREBUILT);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(parse(&text))
}

/// Where the compose image's Dockerfile is, in a project directory.
pub(crate) const PREBUILT: &str = "deploy/docker/prebuilt.Dockerfile";

/// What `deploy/docker/prebuilt.sh` of project directory `dir` prints for `dockerfile`.
pub(crate) fn prebuilt(dir: &Path, dockerfile: &Path) -> Result<std::process::Output> {
    let script = dir.join("deploy/docker/prebuilt.sh");
    Command::new(&script)
        .arg(dockerfile)
        .output()
        .with_context(|| format!("running {}", script.display()))
}

/// The `Dockerfile` of project directory `dir` as its stages: the instructions before the
/// first `FROM` (global `ARG`s), then one list per `FROM`, each opening with it.
pub(crate) fn stages(dir: &Path) -> Result<Vec<Vec<Instruction>>> {
    let path = dir.join("Dockerfile");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = vec![Vec::new()];
    for i in parse(&text) {
        if i.keyword == "FROM" {
            out.push(Vec::new());
        }
        out.last_mut().expect("never empty").push(i);
    }
    Ok(out)
}

/// Instructions of Dockerfile `text`.
pub(crate) fn parse(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        // Comment lines end nothing, even inside a continued instruction.
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(start) => {
                pending.push_str(start.trim());
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                let full = std::mem::take(&mut pending);
                let (keyword, args) = full.split_once(char::is_whitespace).unwrap_or((&full, ""));
                out.push(Instruction {
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.trim().to_owned(),
                });
            }
        }
    }
    out
}

/// The arguments of every `keyword` instruction.
pub(crate) fn all<'a>(instructions: &'a [Instruction], keyword: &str) -> Vec<&'a str> {
    instructions
        .iter()
        .filter(|i| i.keyword == keyword)
        .map(|i| i.args.as_str())
        .collect()
}

/// The arguments of the last `keyword` instruction (the one that applies).
pub(crate) fn last<'a>(instructions: &'a [Instruction], keyword: &str) -> Option<&'a str> {
    all(instructions, keyword).pop()
}

/// `ENV NAME=value` pairs (the form the Dockerfile uses).
pub(crate) fn env(instructions: &[Instruction]) -> Vec<(String, String)> {
    all(instructions, "ENV")
        .into_iter()
        .flat_map(str::split_whitespace)
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

/// An exec-form (`["a", "b"]`) argument list as words.
pub(crate) fn exec_form(args: &str) -> Option<Vec<String>> {
    serde_json::from_str(args).ok()
}

#[test]
fn continued_lines_and_comments() {
    let parsed = parse(
        "# c\nARG A=b\nRUN one \\\n# inside\n  two\nHEALTHCHECK --interval=1s \\\n  CMD [\"x\", \"1\"]\n",
    );
    assert_eq!(
        parsed,
        [
            Instruction {
                keyword: "ARG".into(),
                args: "A=b".into()
            },
            Instruction {
                keyword: "RUN".into(),
                args: "one two".into()
            },
            Instruction {
                keyword: "HEALTHCHECK".into(),
                args: "--interval=1s CMD [\"x\", \"1\"]".into()
            },
        ]
    );
}
