//! The `Dockerfile`: build arguments, stages, and what the final stage sets (`ENV`,
//! `USER`, `WORKDIR`, `HEALTHCHECK`, `ENTRYPOINT`, `CMD`, `COPY`).

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};

use super::{Healthcheck, Vars};
use crate::shell::shell_words;

/// A parsed Dockerfile.
#[derive(Debug, Clone, Default)]
pub struct Dockerfile {
    /// `ARG`s before the first `FROM` (those a `FROM` line may use).
    pub global_args: Vec<BuildArg>,
    /// Its stages, in order (the last one is the image).
    pub stages: Vec<Stage>,
}

/// An `ARG` with its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildArg {
    /// The argument's name.
    pub name: String,
    /// `ARG NAME=default`'s default, if any.
    pub default: Option<String>,
}

/// One `FROM` stage and what it sets.
#[derive(Debug, Clone, Default)]
pub struct Stage {
    /// The base image as written (`${RUNTIME_IMAGE}`).
    pub base: String,
    /// `AS name`.
    pub name: Option<String>,
    /// `ARG`s inside the stage.
    pub args: Vec<BuildArg>,
    /// `ENV`, as the stage ends.
    pub env: Vars,
    /// The last `USER`.
    pub user: Option<String>,
    /// The last `WORKDIR`.
    pub workdir: Option<String>,
    /// The last `HEALTHCHECK`.
    pub healthcheck: Option<Healthcheck>,
    /// The last `ENTRYPOINT`, split into arguments.
    pub entrypoint: Option<Vec<String>>,
    /// The last `CMD`, split into arguments.
    pub cmd: Option<Vec<String>>,
    /// Every `COPY` and `ADD`, in order.
    pub copies: Vec<Copy>,
    /// `EXPOSE`d ports, as written.
    pub expose: Vec<String>,
}

/// A `COPY` (or `ADD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// `--from=stage`: `None` copies from the build context.
    pub from: Option<String>,
    /// What is copied, as written.
    pub sources: Vec<String>,
    /// Where to.
    pub dest: String,
}

impl Dockerfile {
    /// Reads and parses a Dockerfile.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Parses Dockerfile text (line continuations joined, comment lines dropped).
    pub fn parse(text: &str) -> Result<Self> {
        let mut file = Dockerfile::default();
        for instruction in instructions(text) {
            let (keyword, rest) = instruction
                .split_once(char::is_whitespace)
                .unwrap_or((instruction.as_str(), ""));
            let keyword = keyword.to_ascii_uppercase();
            let rest = rest.trim();
            if keyword == "FROM" {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let words: Vec<&str> = words.into_iter().filter(|w| !w.starts_with("--")).collect();
                let (base, name) = match words.as_slice() {
                    [base] => (*base, None),
                    [base, as_, name] if as_.eq_ignore_ascii_case("as") => {
                        (*base, Some((*name).to_owned()))
                    }
                    _ => bail!("FROM {rest}"),
                };
                file.stages.push(Stage {
                    base: base.to_owned(),
                    name,
                    ..Stage::default()
                });
                continue;
            }
            let Some(stage) = file.stages.last_mut() else {
                match keyword.as_str() {
                    "ARG" => file.global_args.push(parse_arg(rest)),
                    _ => bail!("{keyword} before the first FROM"),
                }
                continue;
            };
            match keyword.as_str() {
                "ARG" => stage.args.push(parse_arg(rest)),
                "ENV" => stage.env.extend(parse_env(rest)?),
                "USER" => stage.user = Some(rest.to_owned()),
                "WORKDIR" => stage.workdir = Some(rest.to_owned()),
                "ENTRYPOINT" => stage.entrypoint = Some(exec_form(rest)?),
                "CMD" => stage.cmd = Some(exec_form(rest)?),
                "EXPOSE" => stage
                    .expose
                    .extend(rest.split_whitespace().map(str::to_owned)),
                "HEALTHCHECK" => {
                    let mut words = rest;
                    while let Some(flag) = words.strip_prefix("--") {
                        words = flag
                            .split_once(char::is_whitespace)
                            .map_or("", |(_, r)| r.trim_start());
                    }
                    stage.healthcheck = Some(if words.eq_ignore_ascii_case("NONE") {
                        Healthcheck::Disabled
                    } else {
                        let command = words
                            .strip_prefix("CMD")
                            .with_context(|| format!("HEALTHCHECK {rest}"))?
                            .trim();
                        if command.starts_with('[') {
                            let mut test = vec!["CMD".to_owned()];
                            test.extend(exec_form(command)?);
                            Healthcheck::Test(test)
                        } else {
                            Healthcheck::Test(vec!["CMD-SHELL".to_owned(), command.to_owned()])
                        }
                    });
                }
                "COPY" | "ADD" => {
                    let mut from = None;
                    let mut words = Vec::new();
                    if rest.starts_with('[') {
                        words = exec_form(rest)?;
                    } else {
                        for word in rest.split_whitespace() {
                            if let Some(flag) = word.strip_prefix("--") {
                                if let Some(stage) = flag.strip_prefix("from=") {
                                    from = Some(stage.to_owned());
                                }
                            } else {
                                words.push(word.to_owned());
                            }
                        }
                    }
                    let dest = words.pop().with_context(|| format!("COPY {rest}"))?;
                    ensure!(!words.is_empty(), "COPY {rest} has no source");
                    stage.copies.push(Copy {
                        from,
                        sources: words,
                        dest,
                    });
                }
                _ => {}
            }
        }
        ensure!(!file.stages.is_empty(), "no FROM");
        Ok(file)
    }

    /// The stage the image is (the last one).
    pub fn final_stage(&self) -> &Stage {
        // `parse` refuses a Dockerfile without a stage.
        &self.stages[self.stages.len() - 1]
    }

    /// Directories the image has that a container uses: the final stage's `WORKDIR` and
    /// every absolute path its `ENV` sets (`SEALCAST_DATA_DIR`).
    pub fn image_dirs(&self) -> Vec<String> {
        let stage = self.final_stage();
        stage
            .workdir
            .iter()
            .chain(stage.env.values())
            .filter(|v| v.starts_with('/'))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}

/// The instructions of a Dockerfile, one string each.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(continued) = trimmed.strip_suffix('\\') {
            current.push_str(continued);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            if !current.trim().is_empty() {
                out.push(current.trim().to_owned());
            }
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

fn parse_arg(rest: &str) -> BuildArg {
    match rest.split_once('=') {
        Some((name, default)) => BuildArg {
            name: name.trim().to_owned(),
            default: Some(unquote(default.trim())),
        },
        None => BuildArg {
            name: rest.trim().to_owned(),
            default: None,
        },
    }
}

fn unquote(s: &str) -> String {
    ['"', '\'']
        .iter()
        .find_map(|q| s.strip_prefix(*q)?.strip_suffix(*q))
        .unwrap_or(s)
        .to_owned()
}

/// `ENV A=1 B="two words"` or the old `ENV A value`.
fn parse_env(rest: &str) -> Result<Vars> {
    let words = shell_words(rest)?;
    let mut vars = Vars::new();
    if words.first().is_some_and(|w| !w.contains('=')) {
        let (name, value) = rest
            .split_once(char::is_whitespace)
            .with_context(|| format!("ENV {rest}"))?;
        vars.insert(name.to_owned(), value.trim().to_owned());
        return Ok(vars);
    }
    for word in words {
        let (name, value) = word
            .split_once('=')
            .with_context(|| format!("ENV {rest}"))?;
        vars.insert(name.to_owned(), value.to_owned());
    }
    Ok(vars)
}

/// `["a", "b"]` (exec form) or a shell command (`/bin/sh -c "..."`).
fn exec_form(rest: &str) -> Result<Vec<String>> {
    if rest.starts_with('[') {
        serde_json::from_str(rest).with_context(|| format!("{rest} is not a JSON list"))
    } else {
        Ok(vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.to_owned()])
    }
}
