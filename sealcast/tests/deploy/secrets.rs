//! No secret is written in `docker-compose.yml` or the `Dockerfile`: every one comes from
//! `.env` or `deploy/state/`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use testkit::compose;

use crate::files::{ignore_lines, yaml_strings};
use crate::{dockerfile, init_cluster, raw_project, repo, Findings};

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

/// The variable a value is taken from when it is exactly one `${VAR}` / `${VAR:?message}`
/// without a default (a default would be a literal secret in the file).
fn required_variable(value: &str) -> Option<String> {
    let found = compose::interpolations(value.trim()).ok()?;
    match found.as_slice() {
        [one] if one.range == (0..value.trim().len()) && !one.has_default() => {
            Some(one.name.clone())
        }
        _ => None,
    }
}

/// The password parts of `scheme://user:password@host` URLs in `text`, as written.
fn url_passwords(text: &str) -> Vec<String> {
    // Interpolations may contain '/', ' ' or '@' in their messages: look at the text with
    // each replaced by a placeholder, then take the original back.
    let Ok(found) = compose::interpolations(text) else {
        return vec![text.to_owned()];
    };
    let mut masked = String::new();
    let mut originals = Vec::new();
    let mut last = 0;
    for (i, one) in found.iter().enumerate() {
        masked.push_str(&text[last..one.range.start]);
        masked.push_str(&format!("\u{1}{i}\u{1}"));
        originals.push(&text[one.range.clone()]);
        last = one.range.end;
    }
    masked.push_str(&text[last..]);
    let unmask = |s: &str| {
        let mut s = s.to_owned();
        for (i, original) in originals.iter().enumerate() {
            s = s.replace(&format!("\u{1}{i}\u{1}"), original);
        }
        s
    };
    let mut out = Vec::new();
    let mut rest = masked.as_str();
    while let Some(at) = rest.find("://") {
        let after = &rest[at + 3..];
        let authority = after
            .split(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'')
            .next()
            .unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, password)) = userinfo.split_once(':') {
                out.push(unmask(password));
            }
        }
        rest = after;
    }
    out
}

#[tokio::test]
async fn no_secret_is_written_in_the_compose_file_or_the_dockerfile() {
    let project = raw_project();
    let init = init_cluster().await;
    let mut f = Findings::default();
    let mut from_env_file = BTreeSet::new();
    for service in project.services.values() {
        let build_args = service.build.iter().flat_map(|b| &b.args);
        for (name, value) in service.environment.iter().chain(build_args) {
            if is_secret_name(name) && !value.starts_with('/') {
                match required_variable(value) {
                    Some(var) => {
                        from_env_file.insert(var);
                    }
                    None => f.fail(format!(
                        "{}: {name} is not taken from .env as a required ${{VAR}} (a literal or a default)",
                        service.name
                    )),
                }
            }
        }
    }
    // URL credentials anywhere in the file (anchors included, before merging).
    let doc = compose::load_yaml(&repo().join("docker-compose.yml")).unwrap();
    for (path, value) in yaml_strings(&doc, "") {
        for password in url_passwords(&value) {
            match required_variable(&password) {
                Some(var) => {
                    from_env_file.insert(var);
                }
                None => f.fail(format!(
                    "{path}: a URL with a password that is not a required ${{VAR}}"
                )),
            }
        }
    }
    // Each comes from .env, which the init script writes.
    for var in &from_env_file {
        f.check(init.env.contains_key(var), || {
            format!("{var} is used for a secret but scripts/init-cluster.sh does not write it")
        });
    }
    for expected in [
        "MQTT_PASSWORD_INGEST1",
        "MQTT_PASSWORD_BROADCAST",
        "SEALCAST_PUSH_TOKEN",
        "POSTGRES_PASSWORD",
    ] {
        f.check(from_env_file.contains(expected), || {
            format!("{expected} is not used as a secret: the check did not see the compose file's secrets")
        });
    }

    // The image bakes in no secret.
    let image = dockerfile();
    let args = image
        .global_args
        .iter()
        .chain(image.stages.iter().flat_map(|s| &s.args));
    for arg in args {
        f.check(!is_secret_name(&arg.name), || {
            format!("Dockerfile: ARG {} looks like a secret", arg.name)
        });
    }
    for stage in &image.stages {
        for (name, value) in &stage.env {
            f.check(!is_secret_name(name) || value.starts_with('/'), || {
                format!("Dockerfile: ENV {name} looks like a secret")
            });
            f.check(url_passwords(value).is_empty(), || {
                format!("Dockerfile: ENV {name} has a URL password")
            });
        }
    }
    // Never committed, never in the build context.
    for file in [".gitignore", ".dockerignore"] {
        let lines = ignore_lines(file);
        for path in [".env", "deploy/state", "certs/generated"] {
            f.check(lines.contains(&PathBuf::from(path)), || {
                format!("{file} does not exclude {path}")
            });
        }
    }
    f.assert_none("secrets in the deployment files");
}

#[test]
fn secret_checks_catch_literals() {
    assert!(is_secret_name("SEALCAST_PUSH_TOKEN"));
    assert!(is_secret_name("GF_SECURITY_ADMIN_PASSWORD"));
    assert!(is_secret_name("SEALCAST_TLS_KEY"));
    assert!(!is_secret_name("SEALCAST_KEYS_DIR"));
    assert!(!is_secret_name("SEALCAST_NODE_ID"));
    assert_eq!(required_variable("${A:?run init}").as_deref(), Some("A"));
    assert_eq!(required_variable("${A}").as_deref(), Some("A"));
    assert_eq!(required_variable("${A:-hunter2}"), None);
    assert_eq!(required_variable("hunter2"), None);
    assert_eq!(required_variable("x${A}"), None);
    assert_eq!(
        url_passwords("mqtt://u:${P:?run scripts/init-cluster.sh first}@h:1883 postgres://a:lit@db/x http://h/a:b@c"),
        ["${P:?run scripts/init-cluster.sh first}", "lit"]
    );
    assert!(url_passwords("mqtt://user@host:1883").is_empty());
}
