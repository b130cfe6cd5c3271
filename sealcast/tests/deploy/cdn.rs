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
use crate::{config, init, port_of, repo, Findings};

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

// --- deploy/nginx-cache/ ----------------------------------------------------------------------

/// The variable of deploy/nginx-cache/ that names the two-minute period a request falls in,
/// part of every cache key: nothing is served from that cache past two minutes.
const NGINX_PERIOD: &str = "$sealcast_cache_period";

/// Issue 45 for the nginx cache: it takes no `BAN`, so the two-minute cap is the only bound
/// on what it serves of a stream that turned private; and it reaches the origin listeners,
/// appending the viewer to `X-Forwarded-For` on every request, so that a balancer that
/// trusts it sees the viewer.
#[test]
fn the_nginx_cache_keeps_nothing_past_two_minutes_and_names_the_viewer() {
    let project = init();
    let lbs = load_balancers(&config(&project));
    let conf =
        std::fs::read_to_string(project.dir().join("deploy/nginx-cache/sealcast-cache.conf"))
            .unwrap();
    check_nginx(&conf, &lbs).assert_none("deploy/nginx-cache/sealcast-cache.conf");
}

/// The checks above find what they are for.
#[test]
fn the_nginx_checks_catch_drift() {
    let conf =
        std::fs::read_to_string(repo().join("deploy/nginx-cache/sealcast-cache.conf")).unwrap();
    let lbs = [("lb1".to_owned(), 8081), ("lb2".to_owned(), 8081)];
    assert!(check_nginx(&conf, &lbs).0.is_empty(), "the unbroken file");
    let xff = "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n        proxy_set_header Cookie \"\";";
    let mutations = [
        (
            "the key without its period",
            ("\"$sealcast_cache_period $request_uri\"", "$request_uri"),
            "without $sealcast_cache_period",
        ),
        (
            "a period of the map gone",
            (
                "    \"~^(?<day>[^T]+)T(?<hour>\\d\\d):(?<tens>\\d)[89]:\" \"$day $hour:${tens}8\";\n",
                "",
            ),
            "not two-minute periods",
        ),
        (
            "a location's own headers without X-Forwarded-For",
            (xff, "        proxy_set_header Cookie \"\";"),
            "does not append the viewer",
        ),
        (
            "HTTPS to the public port",
            ("server lb1:8081", "server lb1:443"),
            "origin listeners",
        ),
    ];
    for (what, (from, to), expected) in mutations {
        assert!(conf.contains(from), "{what}: the file has no {from:?}");
        let broken = conf.replacen(from, to, 1);
        let found = check_nginx(&broken, &lbs).0;
        assert!(
            found.iter().any(|f| f.contains(expected)),
            "{what}: no finding says {expected:?}: {found:#?}"
        );
    }
}

/// The findings of [`the_nginx_cache_keeps_nothing_past_two_minutes_and_names_the_viewer`]
/// for the text `conf`, with `lbs` the load balancers and their origin listeners' ports.
fn check_nginx(conf: &str, lbs: &[(String, u16)]) -> Findings {
    let mut f = Findings::default();
    let top = match nginx::parse(conf) {
        Ok(top) => top,
        Err(e) => {
            f.fail(format!("it does not parse: {e}"));
            return f;
        }
    };
    // Two-minute periods: every minute's last digit in exactly one, 0-1, 2-3, ... 8-9.
    let expected: BTreeSet<(String, String)> = (0..5)
        .map(|i| {
            let even = 2 * i;
            (
                format!(
                    "~^(?<day>[^T]+)T(?<hour>\\d\\d):(?<tens>\\d)[{even}{}]:",
                    even + 1
                ),
                format!("$day $hour:${{tens}}{even}"),
            )
        })
        .collect();
    match top
        .iter()
        .find(|d| d.name == "map" && d.args == ["$time_iso8601", NGINX_PERIOD])
    {
        None => f.fail(format!("no map $time_iso8601 {NGINX_PERIOD}")),
        Some(map) => {
            let entries: BTreeSet<(String, String)> = (map.block.iter())
                .map(|d| (d.name.clone(), d.args.join(" ")))
                .collect();
            f.check(entries == expected, || {
                format!("the map of {NGINX_PERIOD} is not two-minute periods of every minute: {entries:?}")
            });
        }
    }
    // Every location: the viewer appended to X-Forwarded-For where it proxies, the period
    // in the key where it caches.
    for server in top.iter().filter(|d| d.name == "server") {
        let inherited = nginx::headers(&server.block);
        for location in server.block.iter().filter(|d| d.name == "location") {
            let at = location.args.join(" ");
            let own = nginx::headers(&location.block);
            let sent = if own.is_empty() { &inherited } else { &own };
            if nginx::value(&location.block, "proxy_pass").is_some() {
                f.check(
                    sent.get("x-forwarded-for").map(String::as_str)
                        == Some("$proxy_add_x_forwarded_for"),
                    || format!("location {at} does not append the viewer to X-Forwarded-For ($proxy_add_x_forwarded_for): {sent:?}"),
                );
            }
            if nginx::value(&location.block, "proxy_cache").is_some() {
                let key = nginx::value(&location.block, "proxy_cache_key")
                    .or_else(|| nginx::value(&server.block, "proxy_cache_key"))
                    .unwrap_or_default();
                f.check(key.contains(NGINX_PERIOD), || {
                    format!("location {at} caches under {key:?}, without {NGINX_PERIOD}: kept as long as anything upstream says")
                });
            }
        }
    }
    // The origin listeners, where a balancer believes a trusted cache's X-Forwarded-For.
    let servers: BTreeSet<String> = top
        .iter()
        .filter(|d| d.name == "upstream")
        .flat_map(|u| u.block.iter().filter(|d| d.name == "server"))
        .filter_map(|d| d.args.first().cloned())
        .collect();
    let listeners: BTreeSet<String> = lbs.iter().map(|(n, p)| format!("{n}:{p}")).collect();
    f.check(servers == listeners, || {
        format!("the upstream's servers are {servers:?}, not the load balancers' origin listeners {listeners:?}")
    });
    f
}

/// Just enough of nginx's configuration syntax for the checks: directives, blocks, quoted
/// words, comments.
mod nginx {
    use std::collections::BTreeMap;

    /// One directive: its name, its arguments and its block (empty without one).
    #[derive(Debug, Clone)]
    pub(super) struct Directive {
        pub(super) name: String,
        pub(super) args: Vec<String>,
        pub(super) block: Vec<Directive>,
    }

    enum Token {
        Word(String),
        Semicolon,
        Open,
        Close,
    }

    fn tokens(text: &str) -> Result<Vec<Token>, String> {
        let mut out = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '#' => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                ';' => out.push(Token::Semicolon),
                '{' => out.push(Token::Open),
                '}' => out.push(Token::Close),
                '"' | '\'' => {
                    let mut word = String::new();
                    loop {
                        match chars.next() {
                            None => return Err("an unterminated quoted word".to_owned()),
                            Some(q) if q == c => break,
                            Some('\\') if chars.peek() == Some(&c) => {
                                word.push(c);
                                chars.next();
                            }
                            Some(other) => word.push(other),
                        }
                    }
                    out.push(Token::Word(word));
                }
                c if c.is_whitespace() => {}
                c => {
                    let mut word = String::from(c);
                    while let Some(&next) = chars.peek() {
                        if next.is_whitespace() || matches!(next, ';' | '{' | '}') {
                            break;
                        }
                        word.push(next);
                        chars.next();
                        // `${name}`: its braces belong to the word.
                        if next == '$' && chars.peek() == Some(&'{') {
                            for c in chars.by_ref() {
                                word.push(c);
                                if c == '}' {
                                    break;
                                }
                            }
                        }
                    }
                    out.push(Token::Word(word));
                }
            }
        }
        Ok(out)
    }

    /// The top-level directives of `text`.
    pub(super) fn parse(text: &str) -> Result<Vec<Directive>, String> {
        let mut blocks: Vec<Vec<Directive>> = vec![Vec::new()];
        let mut heads: Vec<(String, Vec<String>)> = Vec::new();
        let mut words: Vec<String> = Vec::new();
        for token in tokens(text)? {
            match token {
                Token::Word(w) => words.push(w),
                Token::Semicolon | Token::Open => {
                    if words.is_empty() {
                        return Err("a directive without a name".to_owned());
                    }
                    let name = words.remove(0);
                    let args = std::mem::take(&mut words);
                    if matches!(token, Token::Open) {
                        heads.push((name, args));
                        blocks.push(Vec::new());
                    } else if let Some(block) = blocks.last_mut() {
                        block.push(Directive {
                            name,
                            args,
                            block: Vec::new(),
                        });
                    }
                }
                Token::Close => {
                    let (Some((name, args)), Some(block)) = (heads.pop(), blocks.pop()) else {
                        return Err("a } too many".to_owned());
                    };
                    if !words.is_empty() {
                        return Err(format!("{words:?} without a ;"));
                    }
                    if let Some(outer) = blocks.last_mut() {
                        outer.push(Directive { name, args, block });
                    }
                }
            }
        }
        if !heads.is_empty() || !words.is_empty() {
            return Err("it ends inside a block or a directive".to_owned());
        }
        Ok(blocks.pop().unwrap_or_default())
    }

    /// The arguments of the first `name` directive in `block`, joined.
    pub(super) fn value(block: &[Directive], name: &str) -> Option<String> {
        (block.iter().find(|d| d.name == name)).map(|d| d.args.join(" "))
    }

    /// The `proxy_set_header`s of `block`, by lower-case header name.
    pub(super) fn headers(block: &[Directive]) -> BTreeMap<String, String> {
        (block.iter())
            .filter(|d| d.name == "proxy_set_header")
            .filter_map(|d| Some((d.args.first()?.to_ascii_lowercase(), d.args[1..].join(" "))))
            .collect()
    }
}
