//! No secret is written in `docker-compose.yml`, the `Dockerfile` or anything committed:
//! every one comes from `.env` (or `deploy/state/`), which git and the build context
//! leave out.
//!
//! Read from the compose tool's rendering: every secret a container gets must be a value
//! of `.env` (a literal in the file could not be: the init script's values are random),
//! and each is required (with its variable empty the tool refuses the file, so no default
//! stands in for it).

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::Path;

use crate::project::{self, Config, Project};
use crate::{config, dockerfile, init, repo, Findings};

/// A variable name that holds a secret (not a path to one: `SEALCAST_KEYS_DIR`).
fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["PASSWORD", "PASSWD", "TOKEN", "SECRET", "KEY"]
        .iter()
        .any(|w| upper.contains(w))
        && !["_DIR", "_FILE", "_PATH"]
            .iter()
            .any(|s| upper.ends_with(s))
}

/// The `(user, password)` of each `scheme://user:password@host` URL in `text`.
fn url_credentials(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let after = &rest[at + 3..];
        let authority = after
            .split(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'')
            .next()
            .unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((user, password)) = userinfo.split_once(':') {
                out.push((user.to_owned(), password.to_owned()));
            }
        }
        rest = after;
    }
    out
}

/// The `.env` variable whose value `value` is, if it is a secret's.
fn secret_of<'p>(project: &'p Project, value: &str) -> Option<&'p str> {
    project
        .secret_names()
        .into_iter()
        .find(|name| project.env.get(*name).is_some_and(|v| v == value))
}

/// Every secret a rendered container gets that is not a value of `.env` (a literal, or a
/// default that stood in), and every `.env` secret no container gets. Names services and
/// variables, never values.
fn secrets_not_from_env(project: &Project, config: &Config) -> Vec<String> {
    let mut f = Findings::default();
    let mut used = BTreeSet::new();
    for service in config.services() {
        let env = service.environment();
        for (name, value) in &env {
            if is_secret_name(name) && !value.starts_with('/') {
                match secret_of(project, value) {
                    Some(var) => {
                        used.insert(var.to_owned());
                    }
                    None => f.fail(format!(
                        "{}: {name} is not a value of .env (a literal or a default in the compose file)",
                        service.name
                    )),
                }
            }
        }
        for (path, text) in project::strings(service.body, "") {
            for (user, password) in url_credentials(&text) {
                match secret_of(project, &password) {
                    Some(var) => {
                        used.insert(var.to_owned());
                        // Each broker user has its own password variable.
                        if text.starts_with("mqtt://") {
                            let own = format!(
                                "MQTT_PASSWORD_{}",
                                user.to_ascii_uppercase().replace('-', "_")
                            );
                            f.check(var == own, || {
                                format!(
                                    "{}: {path}: MQTT user {user} has {var}'s password, not {own}",
                                    service.name
                                )
                            });
                        }
                    }
                    None => f.fail(format!(
                        "{}: {path}: a URL password that is not a value of .env",
                        service.name
                    )),
                }
            }
        }
    }
    for name in project.secret_names() {
        f.check(used.contains(name), || {
            format!("{name} of .env reaches no container (or the check missed where it goes)")
        });
    }
    f.0
}

/// The secrets of `names` that the compose tool does not require: with the variable empty
/// it still renders the file (a default stands in), or fails without naming it.
fn secrets_not_required(project: &Project, names: &[&str]) -> Vec<String> {
    std::thread::scope(|scope| {
        let runs: Vec<_> = names
            .iter()
            .map(|name| {
                let name = *name;
                scope.spawn(move || {
                    (
                        name,
                        project.run_config(&project::ALL_PROFILES, &[(name, "")]),
                    )
                })
            })
            .collect();
        runs.into_iter()
            .filter_map(|run| {
                let (name, out) = run.join().unwrap();
                match out {
                    Err(e) => Some(format!("{name}: config did not run: {e:#}")),
                    Ok(out) if out.status.success() => Some(format!(
                        "{name}: with it empty, the compose file still renders (a default stands in)"
                    )),
                    Ok(out) if !String::from_utf8_lossy(&out.stderr).contains(name) => {
                        Some(format!(
                            "{name}: with it empty, config fails without naming it:\n{}",
                            project.redact(&String::from_utf8_lossy(&out.stderr))
                        ))
                    }
                    Ok(_) => None,
                }
            })
            .collect()
    })
}

/// The files of `dir` (the project copy) that show a secret of `project`'s `.env`.
fn files_showing_secrets(project: &Project, files: &[&Path]) -> Vec<String> {
    files
        .iter()
        .filter(|f| project.leaks(&std::fs::read_to_string(f).unwrap_or_default()))
        .map(|f| format!("{} shows a secret of .env", f.display()))
        .collect()
}

#[test]
fn no_secret_is_written_in_the_compose_file_the_image_or_the_repository() {
    let project = init();
    let config = config(&project);
    let mut f = Findings::default();
    f.0.extend(secrets_not_from_env(&project, &config));
    let names = project.secret_names();
    f.check(names.len() >= 8, || {
        format!("only {} secrets in .env: {names:?}", names.len())
    });
    f.0.extend(secrets_not_required(&project, &names));
    f.0.extend(files_showing_secrets(
        &project,
        &[
            &project.dir().join("docker-compose.yml"),
            &project.dir().join("Dockerfile"),
        ],
    ));

    // Nothing committed shows one (git grep over the tracked files).
    let mut args = vec![OsStr::new("grep"), OsStr::new("-F"), OsStr::new("-l")];
    for value in project.secret_values() {
        args.push(OsStr::new("-e"));
        args.push(OsStr::new(value));
    }
    let out = project::git(&args).unwrap();
    match out.status.code() {
        Some(1) => {}
        Some(0) => f.fail(format!(
            "committed files show a secret of the test's .env: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        )),
        _ => f.fail(format!(
            "git grep failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )),
    }
    // What holds secrets is never committed, and never in the build context.
    let dockerignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    let dockerignored: Vec<&str> = dockerignore
        .lines()
        .map(|l| l.trim().trim_start_matches('/').trim_end_matches('/'))
        .collect();
    for path in [".env", "deploy/state", "certs/generated"] {
        f.check(project::git_ignores(Path::new(path)).unwrap(), || {
            format!(".gitignore does not exclude {path}")
        });
        let tracked =
            project::git(&[OsStr::new("ls-files"), OsStr::new("--"), OsStr::new(path)]).unwrap();
        f.check(tracked.stdout.is_empty(), || format!("{path} is committed"));
        f.check(dockerignored.contains(&path), || {
            format!(".dockerignore does not exclude {path}")
        });
    }

    // The image bakes in no secret.
    let image = dockerfile::instructions(project.dir()).unwrap();
    for arg in dockerfile::all(&image, "ARG") {
        let name = arg.split('=').next().unwrap_or_default();
        f.check(!is_secret_name(name), || {
            format!("Dockerfile: ARG {name} looks like a secret")
        });
    }
    for (name, value) in dockerfile::env(&image) {
        f.check(!is_secret_name(&name) || value.starts_with('/'), || {
            format!("Dockerfile: ENV {name} looks like a secret")
        });
        f.check(url_credentials(&value).is_empty(), || {
            format!("Dockerfile: ENV {name} has a URL password")
        });
    }
    f.assert_none("secrets in the deployment files");
}

/// The checks above find a literal secret and a default one written into a copy of the
/// compose file, and a secret pasted into it.
#[test]
fn the_secret_checks_catch_a_literal_a_default_and_a_pasted_value() {
    let project = init();
    let path = project.dir().join("docker-compose.yml");
    let original = std::fs::read_to_string(&path).unwrap();
    let required = "${POSTGRES_PASSWORD:?run scripts/init-cluster.sh first}";
    let lb = "mqtt://lb:${MQTT_PASSWORD_LB:?run scripts/init-cluster.sh first}@";
    assert!(
        original.contains(&format!("POSTGRES_PASSWORD: {required}")) && original.contains(lb),
        "the compose file changed: update the lines this test edits"
    );
    let pasted = project.var("MQTT_PASSWORD_ADMIN").unwrap().to_owned();
    let edited = original
        .replacen(
            &format!("POSTGRES_PASSWORD: {required}"),
            "POSTGRES_PASSWORD: hunter2-written-in-the-file",
            1,
        )
        .replace(lb, "mqtt://lb:${MQTT_PASSWORD_LB:-lb-default-password}@")
        + &format!("# {pasted}\n");
    std::fs::write(&path, edited).unwrap();

    let config = config(&project);
    let literal = secrets_not_from_env(&project, &config);
    assert!(
        literal
            .iter()
            .any(|w| w.starts_with("postgres: POSTGRES_PASSWORD is not a value of .env")),
        "the literal POSTGRES_PASSWORD was not caught: {literal:#?}"
    );
    let defaulted = secrets_not_required(&project, &["MQTT_PASSWORD_LB", "MQTT_PASSWORD_ADMIN"]);
    assert_eq!(
        defaulted,
        ["MQTT_PASSWORD_LB: with it empty, the compose file still renders (a default stands in)"],
        "the default of MQTT_PASSWORD_LB was not caught (or a required one was flagged)"
    );
    let shown = files_showing_secrets(&project, &[&path]);
    assert_eq!(shown.len(), 1, "the pasted password was not caught");
    // None of it names the values.
    for finding in literal.iter().chain(&defaulted).chain(&shown) {
        assert!(!project.leaks(finding), "a finding shows a secret");
    }
}

#[test]
fn secret_names_and_url_credentials() {
    assert!(is_secret_name("SEALCAST_PUSH_TOKEN"));
    assert!(is_secret_name("GF_SECURITY_ADMIN_PASSWORD"));
    assert!(is_secret_name("SEALCAST_TLS_KEY"));
    assert!(!is_secret_name("SEALCAST_KEYS_DIR"));
    assert!(!is_secret_name("SEALCAST_NODE_ID"));
    assert_eq!(
        url_credentials("mqtt://u:p1@h:1883 postgres://a:lit@db/x http://h/a:b@c"),
        [
            ("u".to_owned(), "p1".to_owned()),
            ("a".into(), "lit".into())
        ]
    );
    assert!(url_credentials("mqtt://user@host:1883").is_empty());
}
