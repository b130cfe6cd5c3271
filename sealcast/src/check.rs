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
//! Long (about 650 lines before its tests) because every role's inputs are checked in one
//! pass, so that each problem comes out with its variable's name: the checks that roles
//! share (keys, broker URL, listeners) would scatter if it were split by role.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use clap::builder::ValueParser;
use clap::error::{ContextKind, ContextValue};
use clap::parser::ValueSource;
use clap::{Arg, CommandFactory, FromArgMatches};
use domain::push::PushToken;
use domain::NodeId;

use crate::cli::{BroadcastArgs, CatalogArgs, Cli, Command, IngestArgs, LbArgs, TlsArgs};
use crate::cli::{SourceArgs, TrustArgs, UpArgs};

/// The flag.
pub(crate) const FLAG: &str = "--check-config";

/// The roles that take it.
const ROLES: [&str; 5] = ["up", "ingest", "broadcast", "lb", "source"];

/// Variables read outside the command line's definitions.
const OTHER_VARIABLES: [&str; 1] = ["SEALCAST_LOG"];

/// One thing wrong, and where it comes from: a variable's name, a flag, a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    place: String,
    what: String,
}

impl Problem {
    fn new(place: impl Into<String>, what: impl Into<String>) -> Self {
        Problem {
            place: place.into(),
            what: what.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.what)
    }
}

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
                "goes with a role: sealcast up|ingest|broadcast|lb|source [...] --check-config",
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
            Ok(parsed) => check_role(parsed.command, &mut problems),
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

/// What each role reads beyond its arguments.
fn check_role(command: Command, problems: &mut Vec<Problem>) {
    match command {
        Command::Up(args) => check_up(&args, problems),
        Command::Ingest(args) => check_ingest(&args, problems),
        Command::Broadcast(args) => check_broadcast(&args, problems),
        Command::Lb(args) => check_lb(&args, problems),
        Command::Source(args) => check_source(&args, problems),
        _ => {}
    }
}

fn check_up(args: &UpArgs, problems: &mut Vec<Problem>) {
    catalog(&args.catalog, problems);
    config(args.config.as_deref(), problems);
    tls(&args.tls, problems);
    acme(args.balance.acme_dir.as_deref(), problems);
    distinct_listeners(
        &[
            ("SEALCAST_RTMP_LISTEN", args.rtmp_listen),
            ("SEALCAST_BROADCAST_LISTEN", args.broadcast_listen),
            ("SEALCAST_LB_HTTPS_LISTEN", args.https_listen),
            ("SEALCAST_LB_HTTP_LISTEN", args.http_listen),
            ("SEALCAST_MQTT_LISTEN", args.mqtt_listen),
        ],
        problems,
    );
}

/// The root public key, which every role but the source checks something against.
fn root_public(keys: &certs::KeyDir, why: &str, problems: &mut Vec<Problem>) {
    if let Err(e) = keys.root_public() {
        problems.push(Problem::new(
            "SEALCAST_KEYS_DIR",
            format!(
                "the cluster's root public key {} ({why}) cannot be read: {e}",
                keys.root_public_path().display()
            ),
        ));
    }
}

fn check_ingest(args: &IngestArgs, problems: &mut Vec<Problem>) {
    catalog(&args.catalog, problems);
    config(args.config.as_deref(), problems);
    let keys = crate::roles::key_dir(args.trust.keys_dir.as_deref(), &args.catalog);
    push_token(&args.trust, &keys, problems);
    match NodeId::new(args.node_id.clone()) {
        Ok(node) => {
            if let Err(e) = keys.ingest(&node) {
                problems.push(Problem::new(
                    "SEALCAST_KEYS_DIR",
                    format!(
                        "the signing key and certificate of {node} ({}, {}) cannot be read: {e}",
                        keys.signing_key_path(&node).display(),
                        keys.certificate_path(&node).display()
                    ),
                ));
            }
        }
        Err(e) => problems.push(Problem::new("SEALCAST_NODE_ID", e.to_string())),
    }
    root_public(
        &keys,
        "broadcast presences are checked against it",
        problems,
    );
    distinct_listeners(
        &[
            ("SEALCAST_RTMP_LISTEN", args.rtmp_listen),
            ("SEALCAST_METRICS_LISTEN", args.metrics_listen),
        ],
        problems,
    );
}

fn check_broadcast(args: &BroadcastArgs, problems: &mut Vec<Problem>) {
    // Without a database URL a broadcast node opens no catalog at all.
    if args.catalog.database_url.is_some() {
        catalog(&args.catalog, problems);
    }
    config(args.config.as_deref(), problems);
    node_id(args.node_id.as_deref(), problems);
    let keys = crate::roles::key_dir(args.trust.keys_dir.as_deref(), &args.catalog);
    push_token(&args.trust, &keys, problems);
    root_public(
        &keys,
        "ingest certificates are checked against it",
        problems,
    );
    if let Err(e) = keys.edge() {
        problems.push(Problem::new(
            "SEALCAST_KEYS_DIR",
            format!(
                "the edge key and certificate ({}, {}) that sign this node's presence cannot be read: {e}",
                keys.edge_key_path().display(),
                keys.edge_certificate_path().display()
            ),
        ));
    }
    for (name, url) in [
        ("SEALCAST_PUBLIC_URL", &args.public_url),
        ("SEALCAST_DIRECT_URL", &args.direct_url),
    ] {
        if let Some(url) = url {
            if !domain::presence::is_base_url(url) {
                problems.push(Problem::new(
                    name,
                    format!("{url:?} is not an http(s)://host[:port] base URL without a path"),
                ));
            }
        }
    }
    if let Some(dir) = &args.recordings {
        not_a_file(dir, "SEALCAST_RECORDINGS_DIR", problems);
    }
}

fn check_lb(args: &LbArgs, problems: &mut Vec<Problem>) {
    node_id(args.node_id.as_deref(), problems);
    tls(&args.tls, problems);
    acme(args.balance.acme_dir.as_deref(), problems);
    let keys = crate::roles::key_dir(args.keys_dir.as_deref(), &args.catalog);
    let cookie = keys
        .cookie_key()
        .map_err(|e| e.to_string())
        .and_then(|key| {
            loadbalancer::cookie::CookieKey::new(&key)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
    if let Err(e) = cookie {
        problems.push(Problem::new(
            "SEALCAST_KEYS_DIR",
            format!(
                "the sticky-cookie key {} cannot be used: {e}",
                keys.cookie_key_path().display()
            ),
        ));
    }
    root_public(
        &keys,
        "broadcast presences are checked against it",
        problems,
    );
    distinct_listeners(
        &[
            ("SEALCAST_LB_HTTPS_LISTEN", args.https_listen),
            ("SEALCAST_LB_HTTP_LISTEN", args.http_listen),
            ("SEALCAST_METRICS_LISTEN", args.metrics_listen),
        ],
        problems,
    );
}

fn check_source(args: &SourceArgs, problems: &mut Vec<Problem>) {
    if let Some(url) = &args.url {
        if !rtmp_url_shape(url) {
            problems.push(Problem::new(
                "SEALCAST_SOURCE_URL",
                "must look like rtmp://HOST[:PORT]/APP/KEY (the value is not shown: it holds a stream key)",
            ));
            return;
        }
    }
    if let Err(e) = crate::commands::source_config(args) {
        problems.push(Problem::new("source", format!("{e:#}")));
    }
}

fn catalog(args: &CatalogArgs, problems: &mut Vec<Problem>) {
    match &args.database_url {
        Some(url) => {
            if let Err(e) = catalog::Catalog::check_location(url) {
                problems.push(Problem::new("SEALCAST_DATABASE_URL", e.to_string()));
            }
        }
        None => not_a_file(&args.data_dir, "SEALCAST_DATA_DIR", problems),
    }
}

fn config(path: Option<&Path>, problems: &mut Vec<Problem>) {
    if let Err(e) = crate::config::load(path) {
        problems.push(Problem::new("SEALCAST_CONFIG", format!("{e:#}")));
    }
}

fn node_id(id: Option<&str>, problems: &mut Vec<Problem>) {
    if let Some(id) = id {
        if let Err(e) = NodeId::new(id.to_owned()) {
            problems.push(Problem::new("SEALCAST_NODE_ID", e.to_string()));
        }
    }
}

fn push_token(trust: &TrustArgs, keys: &certs::KeyDir, problems: &mut Vec<Problem>) {
    match &trust.push_token {
        Some(token) => {
            if let Err(e) = PushToken::new(token.clone()) {
                problems.push(Problem::new("SEALCAST_PUSH_TOKEN", e.to_string()));
            }
        }
        None => {
            if let Err(e) = keys.push_token() {
                problems.push(Problem::new(
                    "SEALCAST_PUSH_TOKEN",
                    format!(
                        "not set, and the key directory's {} cannot be read: {e}",
                        keys.push_token_path().display()
                    ),
                ));
            }
        }
    }
}

/// The HTTPS certificate: the operator's files, or the generated ones, or a directory
/// where they can be generated.
fn tls(args: &TlsArgs, problems: &mut Vec<Problem>) {
    use loadbalancer::tls::{CertificateFiles, ReloadingCertificate};
    if let (Some(chain), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let files = CertificateFiles {
            chain: chain.clone(),
            key: key.clone(),
        };
        if let Err(e) = ReloadingCertificate::load(files) {
            problems.push(Problem::new("SEALCAST_TLS_CERT", e.to_string()));
        }
        return;
    }
    let dir = certs::TlsDir::new(&args.certs_dir);
    let files = CertificateFiles {
        chain: dir.server_chain_path(),
        key: dir.server_key_path(),
    };
    if files.chain.exists() || files.key.exists() {
        if let Err(e) = ReloadingCertificate::load(files) {
            problems.push(Problem::new("SEALCAST_CERTS_DIR", e.to_string()));
        }
    } else if let Err(e) = can_create_in(&args.certs_dir) {
        problems.push(Problem::new(
            "SEALCAST_CERTS_DIR",
            format!(
                "{} has no server certificate, and one cannot be made there: {e}",
                args.certs_dir.display()
            ),
        ));
    }
}

fn acme(dir: Option<&Path>, problems: &mut Vec<Problem>) {
    if let Some(dir) = dir {
        if !dir.is_dir() {
            problems.push(Problem::new(
                "SEALCAST_ACME_DIR",
                format!("{} is not a directory", dir.display()),
            ));
        }
    }
}

/// A path the role makes a directory of: fine if missing, wrong if it is something else.
fn not_a_file(path: &Path, name: &str, problems: &mut Vec<Problem>) {
    if path.exists() && !path.is_dir() {
        problems.push(Problem::new(
            name,
            format!("{} exists and is not a directory", path.display()),
        ));
    }
}

/// Whether files can be made in `dir` (created with its parents if missing): a probe file
/// in the nearest existing ancestor, removed at once.
fn can_create_in(dir: &Path) -> Result<(), String> {
    // A relative path's last ancestor is "", the working directory.
    let existing = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("."));
    if !existing.is_dir() {
        return Err(format!("{} is not a directory", existing.display()));
    }
    let probe = existing.join(format!(".sealcast-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| format!("{}: {e}", existing.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Two listeners of one role on the same fixed address cannot both bind.
fn distinct_listeners(listeners: &[(&str, SocketAddr)], problems: &mut Vec<Problem>) {
    for (i, (name, addr)) in listeners.iter().enumerate() {
        if addr.port() == 0 {
            continue;
        }
        if let Some((other, _)) = listeners[..i].iter().find(|(_, a)| a == addr) {
            problems.push(Problem::new(
                *name,
                format!("{addr} is also {other}; each listener needs its own port"),
            ));
        }
    }
}

/// `rtmp://host[:port]/app/key`, shape only.
fn rtmp_url_shape(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("rtmp://")
        .or_else(|| url.strip_prefix("rtmps://"))
    else {
        return false;
    };
    let mut parts = rest.split('/');
    let host = parts.next().unwrap_or("");
    let app = parts.next().unwrap_or("");
    let key = parts.next().unwrap_or("");
    !host.is_empty() && !app.is_empty() && !key.is_empty() && parts.next().is_none()
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
    fn listeners_on_one_address_are_reported() {
        let mut problems = Vec::new();
        let a: SocketAddr = "0.0.0.0:80".parse().expect("addr");
        let zero: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        distinct_listeners(
            &[("A", a), ("B", zero), ("C", zero), ("D", a)],
            &mut problems,
        );
        assert_eq!(
            problems,
            [Problem::new(
                "D",
                "0.0.0.0:80 is also A; each listener needs its own port"
            )]
        );
    }

    #[test]
    fn rtmp_urls_are_checked_for_shape() {
        assert!(rtmp_url_shape("rtmp://ingest1:1935/live/sk_abc"));
        assert!(!rtmp_url_shape("rtmp://ingest1:1935/live"));
        assert!(!rtmp_url_shape("http://ingest1/live/key"));
        assert!(!rtmp_url_shape("rtmp:///live/key"));
    }

    #[test]
    fn every_variable_named_here_is_one_the_command_line_reads() {
        let cli = Cli::command();
        let known: BTreeSet<String> = cli.get_subcommands().flat_map(variables).collect();
        let source = include_str!("check.rs");
        let named: BTreeSet<&str> = source
            .match_indices("\"SEALCAST_")
            .map(|(i, _)| {
                let rest = &source[i + 1..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
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
}
