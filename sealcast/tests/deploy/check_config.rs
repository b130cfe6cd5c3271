//! Every sealcast service's command and environment, as the container would see them,
//! passes `sealcast ... --check-config`; a broken environment fails with every problem
//! named at once.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use anyhow::{Context, Result};
use testkit::compose::{Container, InitCluster, Project, Vars};

use crate::topology::{port_of, sealcast_role};
use crate::{bin, dockerfile, init_cluster, leaks, Findings};

/// A service's container, laid out, with its environment (interpolated from the init
/// script's `.env`, the image's `ENV` included).
struct Prepared {
    container: Container,
    env: Vars,
    argv: Vec<String>,
}

fn prepare(init: &InitCluster, project: &Project, name: &str) -> Result<Prepared> {
    let service = project.service(name)?;
    let image = project.dockerfile(service)?;
    let container = Container::materialize(service, init.project_dir(), image.as_ref())?;
    Ok(Prepared {
        env: project.container_env(service, image.as_ref()),
        argv: service.argv(image.as_ref()),
        container,
    })
}

/// The result of one `sealcast ... --check-config`.
struct Checked {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

fn check_config(prepared: &Prepared, args: &[String], env: &Vars) -> Result<Checked> {
    let mut command = prepared.container.command(bin(), env);
    command.args(args).arg("--check-config");
    let out = testkit::process::run_with_deadline(command, Duration::from_secs(20))?;
    Ok(Checked {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The `rtmp://HOST:PORT/live/` a source script publishes to.
fn source_target(script: &str) -> Option<(String, u16)> {
    let start = script.find("rtmp://")? + "rtmp://".len();
    let authority = script[start..].split('/').next()?;
    let (host, port) = authority.split_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

/// Services built from the image that are not checked, and why.
const NOT_CHECKED: [(&str, &str); 1] = [(
    "tools",
    "profile `tools`: runs the operator's one-shot commands (`streams`, `keys`, `certs`), given on the command line",
)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_passes_check_config_with_its_compose_environment() {
    let init = init_cluster().await;
    let project = init.project().unwrap();
    let image = dockerfile();
    let mut f = Findings::default();
    let mut checked = Vec::new();
    for service in project.services.values().filter(|s| s.build.is_some()) {
        if NOT_CHECKED.iter().any(|(n, _)| *n == service.name) {
            f.check(!service.profiles.is_empty(), || {
                format!("{} is skipped but starts with `up`", service.name)
            });
            continue;
        }
        let prepared = match prepare(&init, &project, &service.name) {
            Ok(p) => p,
            Err(e) => {
                f.fail(format!("{}: {e:#}", service.name));
                continue;
            }
        };
        let (args, env) = match prepared.argv.as_slice() {
            [program, args @ ..] if program == "sealcast" => (args.to_vec(), prepared.env.clone()),
            [sh, c, script] if sh == "/bin/sh" && c == "-c" => {
                // A test source: it makes a stream key and runs `sealcast source`.
                if !script.contains("exec sealcast source") {
                    f.fail(format!(
                        "{}: the script does not run `exec sealcast source`",
                        service.name
                    ));
                    continue;
                }
                let Some((host, port)) = source_target(script) else {
                    f.fail(format!(
                        "{}: no rtmp://HOST:PORT/live/ in its script",
                        service.name
                    ));
                    continue;
                };
                let rtmp = project
                    .services
                    .get(&host)
                    .filter(|s| sealcast_role(s, &image).as_deref() == Some("ingest"))
                    .map(|s| {
                        s.environment
                            .get("SEALCAST_RTMP_LISTEN")
                            .and_then(|a| port_of(a))
                            .unwrap_or(1935)
                    });
                f.check(rtmp == Some(port), || {
                    format!(
                        "{}: publishes to {host}:{port}, which is no ingest's RTMP port",
                        service.name
                    )
                });
                let mut env = prepared.env.clone();
                env.insert(
                    "SEALCAST_SOURCE_URL".into(),
                    format!("rtmp://{host}:{port}/live/sk_0123456789abcdef"),
                );
                (vec!["source".to_owned()], env)
            }
            other => {
                f.fail(format!(
                    "{}: runs {other:?}, which this test does not know",
                    service.name
                ));
                continue;
            }
        };
        let role = args.first().cloned().unwrap_or_default();
        match check_config(&prepared, &args, &env) {
            Err(e) => f.fail(format!("{}: {e:#}", service.name)),
            Ok(out) => {
                f.check(out.status.success(), || {
                    format!(
                        "{}: `sealcast {} --check-config` exited with {}:\n{}",
                        service.name,
                        args.join(" "),
                        out.status,
                        init.redact(out.stderr.trim())
                    )
                });
                f.check(
                    out.stdout.contains(&format!("configuration ok ({role}")),
                    || {
                        format!(
                            "{}: stdout is {:?}, not \"configuration ok ({role})\"",
                            service.name,
                            out.stdout.trim()
                        )
                    },
                );
                f.check(
                    !leaks(&init, &out.stdout) && !leaks(&init, &out.stderr),
                    || format!("{}: --check-config printed a secret", service.name),
                );
            }
        }
        // A variable another role reads is not an error.
        if role == "ingest" {
            let mut other = env.clone();
            other.insert("SEALCAST_HTTP_LISTEN".into(), "0.0.0.0:8080".into());
            let out = check_config(&prepared, &args, &other);
            f.check(out.as_ref().is_ok_and(|o| o.status.success()), || {
                format!(
                    "{}: SEALCAST_HTTP_LISTEN (broadcast's) is refused by ingest",
                    service.name
                )
            });
        }
        checked.push(service.name.clone());
    }
    let expected = [
        "broadcast",
        "ingest1",
        "ingest2",
        "lb",
        "source1",
        "source2",
    ];
    f.check(checked == expected, || {
        format!("checked {checked:?}, expected {expected:?}")
    });
    f.assert_none("--check-config with the compose environment");
}

/// How a negative case breaks a key file.
#[derive(Debug, Clone, Copy)]
enum Break {
    Remove,
    Unreadable,
}

/// Makes the mounted file at `target` missing or unreadable (the symlink is replaced; its
/// source stays).
fn break_file(container: &Container, target: &str, how: Break) -> Result<()> {
    let mount = container
        .mount(target)
        .with_context(|| format!("nothing is mounted at {target}"))?;
    std::fs::remove_file(&mount.host)?;
    if let Break::Unreadable = how {
        if testkit::running_as_root(container.root())? {
            // Permission bits do not stop root: a directory cannot be read as a file.
            std::fs::create_dir(&mount.host)?;
        } else {
            std::fs::write(&mount.host, b"unreadable")?;
            std::fs::set_permissions(&mount.host, std::fs::Permissions::from_mode(0o000))?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_reports_every_problem_at_once_with_its_variable() {
    let init = init_cluster().await;
    let project = init.project().unwrap();
    let mut f = Findings::default();
    // (service, variables to set, variables to remove, key file to break, expected
    // (variable, and a word on the same line) pairs)
    type Case<'a> = (
        &'a str,
        Vec<(&'a str, String)>,
        &'a [&'a str],
        (&'a str, Break),
        Vec<(&'a str, &'a str)>,
    );
    let lb_password = init.var("MQTT_PASSWORD_LB").unwrap().to_owned();
    let cases: Vec<Case> = vec![
        (
            "broadcast",
            vec![
                ("SEALCAST_RTMP_LISTN", "0.0.0.0:1935".into()),
                ("SEALCAST_HTTP_LISTEN", "not-an-address".into()),
            ],
            &["SEALCAST_PUSH_TOKEN"],
            ("/etc/sealcast/keys/root.pub", Break::Remove),
            vec![
                ("SEALCAST_RTMP_LISTN", ""),
                ("SEALCAST_HTTP_LISTEN", ""),
                ("SEALCAST_PUSH_TOKEN", ""),
                ("SEALCAST_KEYS_DIR", "root.pub"),
            ],
        ),
        (
            "ingest1",
            vec![
                ("SEALCAST_METRICS_LISTN", "0.0.0.0:9100".into()),
                ("SEALCAST_RTMP_LISTEN", "not-an-address".into()),
            ],
            &["SEALCAST_PUSH_TOKEN"],
            ("/etc/sealcast/keys/ingest/ingest1.key", Break::Unreadable),
            vec![
                ("SEALCAST_METRICS_LISTN", ""),
                ("SEALCAST_RTMP_LISTEN", ""),
                ("SEALCAST_PUSH_TOKEN", ""),
                ("SEALCAST_KEYS_DIR", "ingest1.key"),
            ],
        ),
        (
            "lb",
            vec![
                ("SEALCAST_LB_MOD", "hash".into()),
                ("SEALCAST_LB_HTTPS_LISTEN", "not-an-address".into()),
                // The real password in a broken URL: reported, never echoed.
                (
                    "SEALCAST_MQTT_URL",
                    format!("mqtt://lb:{lb_password}@mosquitto:not-a-port"),
                ),
            ],
            &[],
            ("/etc/sealcast/keys/cookie-key", Break::Remove),
            vec![
                ("SEALCAST_LB_MOD", ""),
                ("SEALCAST_LB_HTTPS_LISTEN", ""),
                ("SEALCAST_MQTT_URL", ""),
                ("SEALCAST_KEYS_DIR", "cookie-key"),
            ],
        ),
    ];
    for (name, set, remove, (file, how), expected) in cases {
        let before = f.0.len();
        let prepared = match prepare(&init, &project, name) {
            Ok(p) => p,
            Err(e) => {
                f.fail(format!("{name}: {e:#}"));
                continue;
            }
        };
        let mut env = prepared.env.clone();
        for (k, v) in set {
            env.insert(k.to_owned(), v);
        }
        for k in remove {
            env.remove(*k);
        }
        if let Err(e) = break_file(&prepared.container, file, how) {
            f.fail(format!("{name}: {e:#}"));
            continue;
        }
        let args = prepared.argv[1..].to_vec();
        let out = match check_config(&prepared, &args, &env) {
            Ok(out) => out,
            Err(e) => {
                f.fail(format!("{name}: {e:#}"));
                continue;
            }
        };
        f.check(out.status.code() == Some(2), || {
            format!(
                "{name}: a broken configuration exited with {}, not 2",
                out.status
            )
        });
        f.check(!out.stdout.contains("configuration ok"), || {
            format!("{name}: a broken configuration printed \"configuration ok\"")
        });
        for (variable, word) in expected {
            let named = out
                .stderr
                .lines()
                .any(|l| l.contains(variable) && l.contains(word));
            f.check(named, || {
                let what = if word.is_empty() {
                    String::new()
                } else {
                    format!(" with {word}")
                };
                format!("{name}: no stderr line names {variable}{what}")
            });
        }
        f.check(
            !leaks(&init, &out.stdout) && !leaks(&init, &out.stderr),
            || format!("{name}: --check-config printed a secret"),
        );
        // What the binary said, for whoever reads the failure (secrets redacted).
        if f.0.len() > before {
            f.fail(format!(
                "{name}: stderr was:\n{}",
                init.redact(out.stderr.trim())
            ));
        }
    }
    f.assert_none("--check-config with a broken environment");
}

// ----------------------------------------------------------------------------------------
