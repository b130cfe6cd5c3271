//! `sealcast <role> --check-config`: the configuration a role would start with, checked
//! without starting it. The command line, every `SEALCAST_*` variable, the configuration
//! file and the key, certificate and token files the role reads are all looked at, and
//! every problem is reported at once, each with the variable (or flag) it comes from.
//! Nothing is bound, connected to or resolved; the only write is a probe file where a
//! missing certificate would be generated.
//!
//! A `SEALCAST_*` variable no role knows is an error (a typo must not fall back to a
//! default silently); one that another role reads is ignored, so one environment file can
//! serve several roles. Values of secrets (the push token, database, broker and stream
//! URLs) are never shown.
//!
//! Here: the command line and the variables, each value through clap's own parser; what
//! the values lead to (files, keys, secrets, listeners) is the role's plan (`plan`), the
//! same derivation the role starts from.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::process::ExitCode;

use clap::builder::ValueParser;
use clap::error::{ContextKind, ContextValue};
use clap::parser::ValueSource;
use clap::{Arg, CommandFactory, FromArgMatches};

use crate::cli::Cli;
use crate::plan::Problem;

/// The flag.
pub(crate) const FLAG: &str = "--check-config";

/// The roles that take it.
const ROLES: [&str; 6] = ["up", "ingest", "broadcast", "lb", "source", "moq-gate"];

/// Variables read outside the command line's definitions.
const OTHER_VARIABLES: [&str; 4] = [
    "SEALCAST_LOG",
    ingest::distribute::WHOLE_SEGMENTS_VARIABLE,
    // The archive's S3 credentials, read by the `archive` crate (never a flag).
    archive::ACCESS_KEY_ID_VAR,
    archive::SECRET_ACCESS_KEY_VAR,
];

/// Whether the command line asks for a check (the flag before any `--`).
pub(crate) fn requested(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| a.as_os_str() != "--")
        .any(|a| a.as_os_str() == FLAG)
}

/// Checks the process's command line and environment and says what it found: `configuration
/// ok (<role>)` on stdout, or every problem on stderr and exit status 2.
pub(crate) fn run(args: &[OsString]) -> ExitCode {
    let env: Vec<(String, OsString)> = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value)))
        .collect();
    match check(args, &env) {
        Ok(role) => {
            crate::roles::print_ready(&format!("configuration ok ({role})\n"));
            ExitCode::SUCCESS
        }
        Err(problems) => {
            let mut text = format!(
                "sealcast: {} configuration problem{}:\n",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            for problem in &problems {
                text.push_str(&format!("  {problem}\n"));
            }
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
            ExitCode::from(2)
        }
    }
}

/// The check itself: the role checked, or every problem found. `env` stands for the
/// process environment in what is reported about variables; the typed values come from
/// clap, which reads the process environment.
pub(crate) fn check(
    args: &[OsString],
    env: &[(String, OsString)],
) -> Result<&'static str, Vec<Problem>> {
    let rest: Vec<OsString> = args
        .iter()
        .filter(|a| a.as_os_str() != FLAG)
        .cloned()
        .collect();
    let role = rest
        .get(1)
        .and_then(|r| r.to_str())
        .and_then(|r| ROLES.iter().find(|known| **known == r))
        .copied()
        .ok_or_else(|| {
            vec![Problem::new(
                FLAG,
                "goes with a role: sealcast up|ingest|broadcast|lb|source|moq-gate [...] --check-config",
            )]
        })?;
    let cli = Cli::command();
    let Some(sub) = cli.find_subcommand(role) else {
        return Err(vec![Problem::new(FLAG, format!("no role {role}"))]);
    };
    let mut problems = Vec::new();
    let bad_env = check_environment(&cli, sub, env, &mut problems);
    let bad_flags = check_command_line(sub, role, &rest, &mut problems);
    // The typed configuration, with the variables already reported left out (their
    // defaults stand in), so that the files and secrets are checked too.
    if !bad_flags {
        let typed = Cli::command().mut_subcommand(role, |s| {
            s.mut_args(|a| {
                if bad_env.contains(a.get_id().as_str()) {
                    a.env(None::<&'static str>)
                } else {
                    a
                }
            })
        });
        match typed
            .try_get_matches_from(&rest)
            .and_then(|m| Cli::from_arg_matches(&m))
        {
            Ok(parsed) => problems.extend(crate::plan::problems(&parsed.command)),
            Err(e) => problems.push(Problem::new("command line", first_line(&e))),
        }
    }
    if problems.is_empty() {
        Ok(role)
    } else {
        Err(problems)
    }
}

/// Every `SEALCAST_*` variable: known to some role, and valid for this one. Returns the
/// ids of this role's arguments whose variable is invalid.
fn check_environment(
    cli: &clap::Command,
    sub: &clap::Command,
    env: &[(String, OsString)],
    problems: &mut Vec<Problem>,
) -> BTreeSet<String> {
    let known: BTreeSet<String> = cli
        .get_subcommands()
        .flat_map(variables)
        .chain(OTHER_VARIABLES.iter().map(|v| (*v).to_owned()))
        .collect();
    let ours: BTreeSet<String> = variables(sub)
        .into_iter()
        .chain(OTHER_VARIABLES.iter().map(|v| (*v).to_owned()))
        .collect();
    let mut sorted: Vec<&(String, OsString)> = env
        .iter()
        .filter(|(name, _)| name.starts_with("SEALCAST_"))
        .collect();
    sorted.sort();
    let mut bad = BTreeSet::new();
    for (name, value) in sorted {
        let arg = sub
            .get_arguments()
            .find(|a| a.get_env() == Some(OsStr::new(name)));
        match arg {
            Some(arg) => {
                // Flags take any value; an empty value is a value (clap refuses it too).
                if !takes_values(arg) {
                    continue;
                }
                if let Err(e) = validate(arg, value) {
                    problems.push(Problem::new(name.as_str(), describe(arg, value, &e)));
                    bad.insert(arg.get_id().to_string());
                }
            }
            None if known.contains(name) => {}
            None => {
                let hint = closest(name, &ours)
                    .or_else(|| closest(name, &known))
                    .map(|n| format!(" (did you mean {n}?)"))
                    .unwrap_or_default();
                problems.push(Problem::new(
                    name.as_str(),
                    format!("no sealcast role reads this variable{hint}"),
                ));
            }
        }
    }
    bad
}

/// Every value given on the command line, each checked on its own. Returns whether
/// something was wrong.
fn check_command_line(
    sub: &clap::Command,
    role: &str,
    rest: &[OsString],
    problems: &mut Vec<Problem>,
) -> bool {
    // Values as plain strings first, so that one bad value does not hide the others.
    let relaxed = Cli::command().mut_subcommand(role, |s| {
        s.mut_args(|a| {
            if takes_values(&a) {
                a.value_parser(ValueParser::os_string())
            } else {
                a
            }
        })
    });
    let matches = match relaxed.try_get_matches_from(rest) {
        Ok(m) => m,
        Err(e) => {
            problems.push(Problem::new("command line", first_line(&e)));
            return true;
        }
    };
    let Some(matches) = matches.subcommand_matches(role) else {
        return false;
    };
    let mut bad = false;
    for arg in sub.get_arguments().filter(|a| takes_values(a)) {
        let id = arg.get_id().as_str();
        if matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        for raw in matches.get_raw(id).into_iter().flatten() {
            if let Err(e) = validate(arg, raw) {
                let flag = format!("--{}", arg.get_long().unwrap_or(id));
                problems.push(Problem::new(flag, describe(arg, raw, &e)));
                bad = true;
            }
        }
    }
    bad
}

/// The variables a command (and its subcommands) reads.
fn variables(cmd: &clap::Command) -> Vec<String> {
    let mut names: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    for sub in cmd.get_subcommands() {
        names.extend(variables(sub));
    }
    names
}

fn takes_values(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

/// Runs `arg`'s own value parser on one value.
fn validate(arg: &Arg, value: &OsStr) -> Result<(), clap::Error> {
    let single = Arg::new("value")
        .long("value")
        .num_args(1)
        .allow_hyphen_values(true)
        .value_parser(arg.get_value_parser().clone());
    let mut given = OsString::from("--value=");
    given.push(value);
    clap::Command::new("check")
        .no_binary_name(true)
        .arg(single)
        .try_get_matches_from([given])
        .map(|_| ())
}

/// Why a value was refused, with the value unless it is a secret.
fn describe(arg: &Arg, value: &OsStr, e: &clap::Error) -> String {
    let why = if let Some(source) = std::error::Error::source(e) {
        source.to_string()
    } else if let Some(ContextValue::Strings(valid)) = e.get(ContextKind::ValidValue) {
        format!("must be one of {}", valid.join(", "))
    } else {
        first_line(e)
    };
    if arg.is_hide_env_values_set() {
        format!("not accepted (the value is not shown): {why}")
    } else {
        format!("{:?} is not accepted: {why}", value.to_string_lossy())
    }
}

/// A clap error's first line, without its `error: ` prefix.
fn first_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    line.trim_start_matches("error: ").trim().to_owned()
}

/// The known name nearest to a misspelt one, if it is near enough.
fn closest<'a>(name: &str, known: &'a BTreeSet<String>) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn the_flag_is_found_before_a_double_dash_only() {
        assert!(requested(&args("sealcast ingest --check-config")));
        assert!(requested(&args("sealcast --check-config ingest")));
        assert!(!requested(&args("sealcast ingest")));
        assert!(!requested(&args("sealcast source -- --check-config")));
    }

    #[test]
    fn a_misspelt_variable_is_named_with_the_likely_one() {
        let env = vec![(
            "SEALCAST_RTMP_LISTN".to_owned(),
            OsString::from("0.0.0.0:1935"),
        )];
        let problems =
            check(&args("sealcast ingest --check-config"), &env).expect_err("unknown variable");
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            text.iter().any(|p| p.starts_with("SEALCAST_RTMP_LISTN:")
                && p.contains("did you mean SEALCAST_RTMP_LISTEN?")),
            "{text:?}"
        );
    }

    #[test]
    fn variables_of_other_roles_are_not_problems() {
        let cli = Cli::command();
        let sub = cli.find_subcommand("source").expect("source");
        let env = vec![
            (
                "SEALCAST_DATABASE_URL".to_owned(),
                OsString::from("postgres://u@h/db"),
            ),
            (
                "SEALCAST_HTTP_LISTEN".to_owned(),
                OsString::from("nonsense"),
            ),
            ("SEALCAST_LOG".to_owned(), OsString::from("debug")),
        ];
        let mut problems = Vec::new();
        let bad = check_environment(&cli, sub, &env, &mut problems);
        assert!(problems.is_empty() && bad.is_empty(), "{problems:?}");
    }

    #[test]
    fn every_bad_value_is_reported_and_secrets_are_not_shown() {
        let cli = Cli::command();
        let sub = cli.find_subcommand("lb").expect("lb");
        let env = vec![
            (
                "SEALCAST_LB_HTTPS_LISTEN".to_owned(),
                OsString::from("0.0.0.0:44x"),
            ),
            ("SEALCAST_LB_MODE".to_owned(), OsString::from("round-robin")),
            (
                "SEALCAST_MQTT_URL".to_owned(),
                OsString::from("http://lb:hunter2@broker:1883"),
            ),
        ];
        let mut problems = Vec::new();
        let bad = check_environment(&cli, sub, &env, &mut problems);
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 3, "{text:?}");
        assert_eq!(bad.len(), 3);
        assert!(text[0].starts_with("SEALCAST_LB_HTTPS_LISTEN: \"0.0.0.0:44x\""));
        assert!(
            text[1].contains("cookie") && text[1].contains("hash"),
            "{text:?}"
        );
        assert!(text[2].starts_with("SEALCAST_MQTT_URL:") && text[2].contains("mqtt://"));
        assert!(!text.iter().any(|t| t.contains("hunter2")), "{text:?}");
    }

    #[test]
    fn command_line_values_are_checked_one_by_one() {
        let mut problems = Vec::new();
        let cli = Cli::command();
        let sub = cli.find_subcommand("ingest").expect("ingest");
        let bad = check_command_line(
            sub,
            "ingest",
            &args("sealcast ingest --rtmp-listen nowhere --metrics-listen :80 --node-id ok"),
            &mut problems,
        );
        assert!(bad);
        let places: Vec<&str> = problems.iter().map(|p| p.place.as_str()).collect();
        assert_eq!(
            places,
            ["--rtmp-listen", "--metrics-listen"],
            "{problems:?}"
        );
    }

    #[test]
    fn every_variable_named_here_is_one_the_command_line_reads() {
        let cli = Cli::command();
        let known: BTreeSet<String> = cli.get_subcommands().flat_map(variables).collect();
        // This file and the plans, which name the variables their problems come from.
        let source = [
            include_str!("check.rs"),
            include_str!("plan/inputs.rs"),
            include_str!("plan/ingest.rs"),
            include_str!("plan/broadcast.rs"),
            include_str!("plan/lb.rs"),
            include_str!("plan/up.rs"),
            include_str!("plan/source.rs"),
            include_str!("plan/archive.rs"),
        ]
        .concat();
        let named: BTreeSet<&str> = source
            .match_indices("\"SEALCAST_")
            .map(|(i, _)| {
                let rest = &source[i + 1..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .collect();
        assert!(named.len() > 10, "{named:?}");
        let misspelt = [
            "SEALCAST_RTMP_LISTN",
            "SEALCAST_NODE",
            "SEALCAST_",
            "SEALCAST_LOG",
        ];
        for name in named.iter().filter(|n| !misspelt.contains(n)) {
            assert!(
                known.contains(*name),
                "{name} is not a variable of any role"
            );
        }
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("SEALCAST_NODE", "SEALCAST_NODE_ID"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    /// `streams set` takes privacy, recording or both, one of each pair, and not nothing.
    #[test]
    fn streams_set_takes_privacy_and_recording_one_of_each() {
        use clap::Parser as _;

        use crate::cli::{Command, StreamsCommand};
        let set = |line: &str| {
            Cli::try_parse_from(args(line)).map(|cli| match cli.command {
                Command::Streams(a) => match a.command {
                    StreamsCommand::Set {
                        private,
                        public,
                        record,
                        no_record,
                        ..
                    } => (private, public, record, no_record),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(
            set("sealcast streams set cam --no-record").ok(),
            Some((false, false, false, true))
        );
        assert_eq!(
            set("sealcast streams set cam --private --record").ok(),
            Some((true, false, true, false))
        );
        for bad in [
            "sealcast streams set cam",
            "sealcast streams set cam --record --no-record",
            "sealcast streams set cam --private --public",
        ] {
            assert!(set(bad).is_err(), "{bad}");
        }
    }
}
