//! The catalog's PostgreSQL roles in the compose file: the broadcast nodes connect as
//! `sealcast_edge` (no DDL, no migrations, only the writes an edge and its admin API make;
//! docs/deployment.md, "The catalog's roles"), and nothing else does, nor does an edge get
//! the owner's password; the PostgreSQL container gets the edge role's password, to make
//! the role with its data volume.

use crate::project::{self, Project};
use crate::{config, init, Findings};

/// The role the broadcast nodes connect as.
pub(crate) const EDGE_ROLE: &str = "sealcast_edge";
/// The services that connect as it (the compose file's edges).
const EDGE_SERVICES: [&str; 1] = ["broadcast"];

/// The user of a `postgres://user:password@...` URL.
pub(crate) fn database_user(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let (userinfo, _) = rest.split_once('@')?;
    Some(userinfo.split(':').next().unwrap_or(userinfo))
}

/// The findings of [`only_the_edges_connect_as_the_edge_role`] for `project`.
pub(crate) fn check_catalog_roles(project: &Project) -> Findings {
    let config = config(project);
    let mut f = Findings::default();
    let owner_password = project
        .var("POSTGRES_PASSWORD")
        .unwrap_or_default()
        .to_owned();
    let mut edges_seen = 0;
    for service in config.services() {
        let env = service.environment();
        let edge = EDGE_SERVICES.contains(&service.name.as_str());
        let user = env.get("SEALCAST_DATABASE_URL").map(|u| database_user(u));
        match (edge, user) {
            (true, Some(Some(EDGE_ROLE))) => edges_seen += 1,
            (true, other) => f.fail(format!(
                "{} connects to the catalog as {other:?}, not as {EDGE_ROLE}",
                service.name
            )),
            (false, Some(Some(EDGE_ROLE))) => f.fail(format!(
                "{} connects to the catalog as {EDGE_ROLE}, the edges' role (it migrates or writes what the role may not)",
                service.name
            )),
            (false, _) => {}
        }
        if edge && !owner_password.is_empty() {
            for (path, text) in project::strings(service.body, "") {
                f.check(!text.contains(&owner_password), || {
                    format!(
                        "{}: {path} holds the catalog owner's password (POSTGRES_PASSWORD)",
                        service.name
                    )
                });
            }
        }
    }
    f.check(edges_seen == EDGE_SERVICES.len(), || {
        format!("{edges_seen} of the edge services {EDGE_SERVICES:?} connect as {EDGE_ROLE}")
    });
    // The role is made with the data volume, from this password.
    let postgres = config.services().into_iter().find(|s| s.name == "postgres");
    let edge_password = project.var("POSTGRES_EDGE_PASSWORD").unwrap_or_default();
    f.check(
        !edge_password.is_empty()
            && postgres.is_some_and(|p| {
                p.environment()
                    .get("POSTGRES_EDGE_PASSWORD")
                    .map(String::as_str)
                    == Some(edge_password)
            }),
        || "postgres does not get POSTGRES_EDGE_PASSWORD, so no edge role is made".to_owned(),
    );
    f
}

#[test]
fn only_the_edges_connect_as_the_edge_role() {
    check_catalog_roles(&init()).assert_none("the catalog's roles in the compose file");
}

#[test]
fn database_users() {
    assert_eq!(
        database_user("postgres://sealcast_edge:pw@postgres:5432/sealcast"),
        Some("sealcast_edge")
    );
    assert_eq!(
        database_user("postgresql://sealcast@postgres/sealcast"),
        Some("sealcast")
    );
    assert_eq!(database_user("sqlite:///var/lib/sealcast/catalog.db"), None);
}
