//! Least privilege in the rendered compose file (issue 45 item 15): every container drops
//! every capability and adds back only what [`CAPABILITIES`] grants it, with why; none may
//! gain privileges (`no-new-privileges`) or runs privileged; every root file system is
//! read-only. keepalived believes a VRRP advert only from the other balancers, sent on the
//! same link: the configuration `deploy/docker/lb.sh` gives it, with each balancer's
//! rendered environment, says so.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_yaml::Value;

use crate::project::{scalar, Project};
use crate::{config, init, Findings};

/// The capabilities a service may add back after dropping all of them, and why.
const CAPABILITIES: [(&str, &[&str], &str); 3] = [
    (
        "lb1",
        &[
            "NET_ADMIN",
            "NET_RAW",
            "NET_BROADCAST",
            "SETUID",
            "SETGID",
            "SETPCAP",
        ],
        "keepalived: the floating address (NET_ADMIN), VRRP's raw socket (NET_RAW), gratuitous ARP (NET_BROADCAST); lb.sh's switch to RUN_UID with an empty bounding set (SETUID, SETGID, SETPCAP)",
    ),
    ("lb2", &["NET_ADMIN", "NET_RAW", "NET_BROADCAST", "SETUID", "SETGID", "SETPCAP"], "as lb1"),
    (
        "postgres",
        &["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID"],
        "the image's entrypoint gives the data and socket directories to the postgres user, then becomes it",
    ),
];

fn strings(value: &Value) -> BTreeSet<String> {
    match value {
        Value::Sequence(items) => items.iter().filter_map(scalar).collect(),
        other => scalar(other).into_iter().collect(),
    }
}

/// Issue 45 item 15: capabilities, privileges and root file systems of every service.
#[test]
fn every_container_runs_with_no_more_power_than_it_needs() {
    let project = init();
    check_privileges(&project).assert_none("capabilities and file systems");
}

/// The findings of [`every_container_runs_with_no_more_power_than_it_needs`].
pub(crate) fn check_privileges(project: &Project) -> Findings {
    let config = config(project);
    let mut f = Findings::default();
    for service in config.services() {
        let name = service.name.as_str();
        let body = service.body;
        let dropped = strings(&body["cap_drop"]);
        f.check(dropped.contains("ALL"), || {
            format!("{name} keeps Docker's default capabilities (cap_drop: {dropped:?}, not ALL)")
        });
        let added = strings(&body["cap_add"]);
        let allowed: BTreeSet<String> = CAPABILITIES
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, caps, _)| caps.iter().map(|c| (*c).to_owned()).collect())
            .unwrap_or_default();
        let extra: Vec<&String> = added
            .iter()
            .filter(|c| !allowed.contains(c.trim_start_matches("CAP_")))
            .collect();
        f.check(extra.is_empty(), || {
            format!("{name} adds capabilities it is not granted: {extra:?}")
        });
        f.check(
            scalar(&body["privileged"]).as_deref() != Some("true"),
            || format!("{name} runs privileged"),
        );
        let options = strings(&body["security_opt"]);
        f.check(
            options
                .iter()
                .any(|o| matches!(o.as_str(), "no-new-privileges:true" | "no-new-privileges")),
            || format!("{name} may gain privileges (no security_opt no-new-privileges:true)"),
        );
        f.check(
            scalar(&body["read_only"]).as_deref() == Some("true"),
            || format!("{name} has a writable root file system (read_only is not true)"),
        );
    }
    for (name, _, why) in CAPABILITIES {
        f.check(config.service(name).is_ok(), || {
            format!("{name} is granted capabilities ({why}) but there is no such service")
        });
    }
    f
}

/// The keepalived configuration lb.sh writes for `service`'s environment.
fn keepalived_conf(project: &Project, service: &str) -> anyhow::Result<String> {
    let config = config(project);
    let env = config.service(service)?.environment();
    let mut command = Command::new("bash");
    command
        .arg(project.dir().join("deploy/docker/lb.sh"))
        .arg("--keepalived-conf")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(&env);
    let out = testkit::process::run_with_deadline(command, Duration::from_secs(20))?;
    anyhow::ensure!(
        out.status.success(),
        "lb.sh --keepalived-conf exited with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// The lines of block `name { ... }` (one level of nesting, as lb.sh writes it).
fn block<'t>(text: &'t str, name: &str) -> Vec<&'t str> {
    let mut lines = text.lines().map(str::trim);
    let mut out = Vec::new();
    if lines.by_ref().any(|l| l == format!("{name} {{")) {
        let mut depth = 1;
        for line in lines {
            depth += line.matches('{').count();
            depth -= line.matches('}').count();
            if depth == 0 {
                break;
            }
            out.push(line);
        }
    }
    out
}

/// Issue 45 item 15: keepalived drops adverts that do not come from the other balancers'
/// addresses over the link itself (TTL 255).
#[test]
fn keepalived_believes_only_the_other_balancers() {
    let project = init();
    check_vrrp_peers(&project).assert_none("keepalived's peers");
}

/// The findings of [`keepalived_believes_only_the_other_balancers`].
pub(crate) fn check_vrrp_peers(project: &Project) -> Findings {
    let config = config(project);
    let mut f = Findings::default();
    for name in ["lb1", "lb2"] {
        let env = config.service(name).unwrap().environment();
        let text = match keepalived_conf(project, name) {
            Ok(t) => t,
            Err(e) => {
                f.fail(format!("{name}: {e:#}"));
                continue;
            }
        };
        let instance = block(&text, "vrrp_instance sealcast");
        f.check(instance.contains(&"check_unicast_src"), || {
            format!("{name}: keepalived takes adverts from any source (no check_unicast_src)")
        });
        let self_address = env.get("SEALCAST_VRRP_SELF").cloned().unwrap_or_default();
        f.check(
            instance.contains(&format!("unicast_src_ip {self_address}").as_str()),
            || format!("{name}: unicast_src_ip is not {self_address}"),
        );
        let peers: BTreeSet<String> = env
            .get("SEALCAST_VRRP_PEERS")
            .map(|p| p.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        // Its peers are the other balancers, by their fixed addresses: nobody else.
        let others: BTreeSet<String> = ["lb1", "lb2"]
            .into_iter()
            .filter(|other| *other != name)
            .filter_map(|other| config.service(other).ok()?.address("frontend"))
            .collect();
        f.check(!peers.is_empty() && peers == others, || {
            format!("{name}: its peers are {peers:?}, not the other balancers {others:?}")
        });
        f.check(
            config.service(name).unwrap().address("frontend").as_deref()
                == Some(self_address.as_str()),
            || format!("{name}: SEALCAST_VRRP_SELF {self_address} is not its own address"),
        );
        let listed: BTreeSet<String> = block(&text, "unicast_peer")
            .iter()
            .map(|l| l.to_string())
            .collect();
        let wanted: BTreeSet<String> = peers.iter().map(|p| format!("{p} min_ttl 255")).collect();
        f.check(listed == wanted, || {
            format!("{name}: unicast_peer lists {listed:?}, not {wanted:?} (each peer, on this link only)")
        });
        f.check(!text.contains("auth_pass"), || {
            format!("{name}: a VRRP password in keepalived's configuration (v3 has no authentication; v2's travels in clear)")
        });
    }
    f
}

/// The block reader sees what lb.sh writes.
#[test]
fn keepalived_blocks_are_read_as_written() {
    let text = "vrrp_instance sealcast {\n  state BACKUP\n  unicast_peer {\n    10.0.0.2 min_ttl 255\n  }\n  check_unicast_src\n}\nother {\n  x\n}\n";
    assert_eq!(
        block(text, "vrrp_instance sealcast"),
        [
            "state BACKUP",
            "unicast_peer {",
            "10.0.0.2 min_ttl 255",
            "}",
            "check_unicast_src"
        ]
    );
    assert_eq!(block(text, "unicast_peer"), ["10.0.0.2 min_ttl 255"]);
    assert!(block(text, "missing").is_empty());
}
