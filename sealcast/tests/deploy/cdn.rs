//! The cache tier of the compose file (profile `cdn`, issue 33): Varnish with
//! `deploy/varnish/` in front of the load balancers. It is behind its profile; it is on the
//! network the load balancers face; its VCL is the one mounted, and compiles with Debian's
//! Varnish 7.1 (`varnishd -C`); the backends of `origin.vcl` are exactly the load balancers,
//! at the port their origin listener (`SEALCAST_LB_ORIGIN_LISTEN`) is on; its healthcheck
//! probes the port it listens on.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::project::{Config, Health, Project};
use crate::{config, init, port_of, Findings};

/// Where the compose file mounts `deploy/varnish/` in the container.
const VCL_DIR: &str = "/etc/varnish";

#[test]
fn the_cache_tier_is_behind_its_profile_in_front_of_the_origin_listeners() {
    let project = init();
    check_cdn(&project).assert_none("the cdn profile");
}

/// `origin.vcl`'s backends: (`.host`, `.port`) in order.
fn backends(vcl: &str) -> Vec<(String, String)> {
    let value = |block: &str, key: &str| {
        let at = block.find(&format!(".{key} = \""))? + key.len() + 5;
        let rest = &block[at..];
        Some(rest[..rest.find('"')?].to_owned())
    };
    vcl.split("\nbackend ")
        .skip(1)
        .filter_map(|block| Some((value(block, "host")?, value(block, "port")?)))
        .collect()
}

/// The findings of [`the_cache_tier_is_behind_its_profile_in_front_of_the_origin_listeners`]
/// for `project`.
pub(crate) fn check_cdn(project: &Project) -> Findings {
    let mut f = Findings::default();
    let config = config(project);
    let Ok(varnish) = config.service("varnish") else {
        f.fail("no service varnish with every profile on");
        return f;
    };
    f.check(varnish.profiles() == ["cdn"], || {
        format!(
            "varnish has profiles {:?}, not [\"cdn\"]",
            varnish.profiles()
        )
    });
    // Without the profile, `up` leaves it out (Compose v2 drops it from `config`;
    // docker-compose 1.29 lists it with its profiles, checked above).
    let off = project
        .config_with(&[], &[("COMPOSE_PROFILES", "")])
        .unwrap();
    if let Ok(s) = off.service("varnish") {
        f.check(s.profiles() == ["cdn"], || {
            format!("varnish starts without the cdn profile: {:?}", s.profiles())
        });
    }

    // In front of the load balancers, on the network they face, and nowhere else.
    let lbs = load_balancers(&config);
    f.check(lbs.len() == 2, || {
        format!("the load balancers with an origin listener: {lbs:?}")
    });
    f.check(
        varnish.networks() == BTreeSet::from(["frontend".to_owned()]),
        || {
            format!(
                "varnish is on {:?}, not the frontend alone",
                varnish.networks()
            )
        },
    );

    // Its VCL is the repository's, as mounted: `-f` names sealcast.vcl, `vcl_path` the
    // directory origin.vcl is included from.
    let argv: Vec<String> = varnish
        .words("entrypoint")
        .unwrap_or_default()
        .into_iter()
        .chain(varnish.words("command").unwrap_or_default())
        .collect();
    let after = |flag: &str| {
        argv.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].clone())
            .collect::<Vec<_>>()
    };
    f.check(after("-f") == [format!("{VCL_DIR}/sealcast.vcl")], || {
        format!("varnishd -f {:?}, not {VCL_DIR}/sealcast.vcl", after("-f"))
    });
    f.check(after("-p").contains(&format!("vcl_path={VCL_DIR}")), || {
        format!("varnishd -p {:?}: no vcl_path={VCL_DIR}", after("-p"))
    });
    let mounted = varnish.host_path(VCL_DIR).unwrap();
    let repo_dir = project.dir().join("deploy/varnish");
    f.check(mounted.as_deref() == Some(repo_dir.as_path()), || {
        format!("{VCL_DIR} is {mounted:?}, not deploy/varnish")
    });

    // origin.vcl: exactly the load balancers, each at its origin listener's port.
    let origin = std::fs::read_to_string(repo_dir.join("origin.vcl")).unwrap_or_default();
    let backends = backends(&origin);
    let hosts: BTreeSet<String> = backends.iter().map(|(h, _)| h.clone()).collect();
    let names: BTreeSet<String> = lbs.iter().map(|(n, _)| n.clone()).collect();
    f.check(hosts == names, || {
        format!("origin.vcl's backends are {hosts:?}, the load balancers {names:?}")
    });
    for (host, port) in &backends {
        let listen = lbs.iter().find(|(n, _)| n == host).map(|(_, p)| p);
        f.check(listen.map(u16::to_string).as_ref() == Some(port), || {
            format!(
                "origin.vcl reaches {host} on {port}, {host}'s origin listener is on {listen:?}"
            )
        });
    }

    // The healthcheck probes where it listens.
    let listen = after("-a").first().and_then(|a| port_of(a));
    let probes = match varnish.health() {
        Health::Test(words) => words.join(" "),
        other => format!("{other:?}"),
    };
    f.check(
        listen.is_some_and(|p| probes.contains(&format!("127.0.0.1/{p}"))),
        || format!("varnish listens on {listen:?}, its healthcheck is {probes}"),
    );

    // The VCL compiles, with the backends' names made to resolve here.
    if let Err(e) = compile(&repo_dir, &origin, &hosts) {
        f.fail(format!("deploy/varnish does not compile: {e}"));
    }
    f
}

/// The load balancers that listen for a cache in front: (service, origin listener's port).
fn load_balancers(config: &Config) -> Vec<(String, u16)> {
    config
        .services()
        .into_iter()
        .filter_map(|s| {
            let port = port_of(s.environment().get("SEALCAST_LB_ORIGIN_LISTEN")?)?;
            Some((s.name, port))
        })
        .collect()
}

/// `varnishd -C` (compile only) of `dir`'s sealcast.vcl, with `origin` (its hosts named
/// 127.0.0.1, since the compose names resolve only inside the network) on `vcl_path` first.
fn compile(dir: &Path, origin: &str, hosts: &BTreeSet<String>) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let mut local = origin.to_owned();
    for host in hosts {
        local = local.replace(&format!(".host = \"{host}\""), ".host = \"127.0.0.1\"");
    }
    std::fs::write(scratch.path().join("origin.vcl"), local)?;
    let out = Command::new("varnishd")
        .arg("-C")
        .arg("-n")
        .arg(scratch.path().join("n"))
        .arg("-f")
        .arg(dir.join("sealcast.vcl"))
        .arg("-p")
        .arg(format!(
            "vcl_path={}:{}",
            scratch.path().display(),
            dir.display()
        ))
        .output()
        .map_err(|e| {
            anyhow::anyhow!("varnishd: {e} (Debian's varnish; scripts/setup.sh test installs it)")
        })?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
