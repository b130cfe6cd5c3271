//! The broker's ACLs against the real Mosquitto, started with what the rendered
//! `mosquitto` service mounts: its `mosquitto.conf`, the init script's password files and
//! the installed ACLs.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS};
use testkit::mosquitto::Mosquitto;
use tokio::sync::mpsc;

use crate::project::Project;
use crate::{config, init};

/// The rendered compose file's broker with the init script's users, on free ports
/// (blocking: the compose tool runs, Mosquitto starts).
pub(crate) fn broker(project: &Project) -> Mosquitto {
    let config = config(project);
    let binds: Vec<_> = config
        .service("mosquitto")
        .unwrap()
        .binds()
        .unwrap()
        .into_iter()
        .map(|(source, target, _)| (source, target))
        .collect();
    Mosquitto::start_for(&binds).unwrap()
}

/// What a connection reports, in order.
#[derive(Debug)]
enum Incoming {
    Publish { topic: String, payload: Vec<u8> },
    PubAck,
    SubAck(bool),
    Closed(String),
}

/// A test client: rumqttc driven by a task that forwards what arrives.
struct Client {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Incoming>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The CONNACK's verdict.
enum Connected {
    Accepted(Client),
    Refused(ConnectReturnCode),
}

pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

async fn connect(
    port: u16,
    client_id: &str,
    credentials: Option<(&str, &str)>,
) -> Result<Connected> {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    options
        .set_clean_session(true)
        .set_keep_alive(Duration::from_secs(30));
    if let Some((user, password)) = credentials {
        options.set_credentials(user, password);
    }
    let (client, mut events) = AsyncClient::new(options, 64);
    let code = tokio::time::timeout(DEADLINE, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return Ok(ack.code),
                Ok(_) => {}
                Err(ConnectionError::ConnectionRefused(code)) => return Ok(code),
                Err(e) => return Err(anyhow::anyhow!("{client_id}: no CONNACK: {e}")),
            }
        }
    })
    .await
    .with_context(|| format!("{client_id}: no CONNACK in {DEADLINE:?}"))??;
    if code != ConnectReturnCode::Success {
        return Ok(Connected::Refused(code));
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let incoming = match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => Incoming::Publish {
                    topic: p.topic,
                    payload: p.payload.to_vec(),
                },
                Ok(Event::Incoming(Packet::PubAck(_))) => Incoming::PubAck,
                Ok(Event::Incoming(Packet::SubAck(ack))) => Incoming::SubAck(
                    ack.return_codes
                        .iter()
                        .all(|c| !matches!(c, rumqttc::SubscribeReasonCode::Failure)),
                ),
                Ok(_) => continue,
                Err(e) => {
                    let _ = tx.send(Incoming::Closed(e.to_string()));
                    return;
                }
            };
            if tx.send(incoming).is_err() {
                return;
            }
        }
    });
    Ok(Connected::Accepted(Client { client, rx, task }))
}

/// Connects, which must be accepted.
async fn accepted(port: u16, client_id: &str, user: &str, password: &str) -> Result<Client> {
    match connect(port, client_id, Some((user, password))).await? {
        Connected::Accepted(c) => Ok(c),
        Connected::Refused(code) => bail!("{user} ({client_id}) was refused: {code:?}"),
    }
}

impl Client {
    async fn next(&mut self) -> Result<Incoming> {
        let incoming = tokio::time::timeout(DEADLINE, self.rx.recv())
            .await
            .context("nothing arrived in time")?
            .context("the connection task ended")?;
        if let Incoming::Closed(why) = &incoming {
            bail!("the connection closed: {why}");
        }
        Ok(incoming)
    }

    /// Subscribes and waits for the SUBACK, which must grant it.
    async fn subscribe(&mut self, filter: &str) -> Result<()> {
        self.client.subscribe(filter, QoS::AtLeastOnce).await?;
        loop {
            if let Incoming::SubAck(granted) = self.next().await? {
                ensure!(granted, "subscription to {filter} refused");
                return Ok(());
            }
        }
    }

    /// Publishes each (QoS 1, not retained) and waits for every PUBACK. Mosquitto
    /// acknowledges a refused publish too (MQTT 3.1.1 has no way to say no): once acked,
    /// the broker has dealt with it.
    async fn publish_all(&mut self, messages: &[(String, Vec<u8>)]) -> Result<()> {
        for (topic, payload) in messages {
            self.client
                .publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone())
                .await?;
        }
        let mut acks = 0;
        while acks < messages.len() {
            if let Incoming::PubAck = self.next().await? {
                acks += 1;
            }
        }
        Ok(())
    }
}

/// A key id (32 hex digits), for revocation topics.
const KEY_ID: &str = "00112233445566778899aabbccddeeff";

fn topic(rest: &str) -> String {
    format!("sealcast/v1/{rest}")
}

/// The broker, an observer that reads everything (`admin` on the control listener) and a
/// marker publisher (`admin` too).
struct Acl {
    project: Project,
    broker: Mosquitto,
    observer: Client,
    marker: Client,
    runs: u32,
}

impl Acl {
    async fn start() -> Result<Self> {
        let (project, broker) = tokio::task::block_in_place(|| {
            let project = init();
            let broker = broker(&project);
            (project, broker)
        });
        let control = broker.port(1884)?;
        let admin = project.var("MQTT_PASSWORD_ADMIN")?.to_owned();
        let mut observer = accepted(control, "observer", "admin", &admin).await?;
        observer.subscribe("sealcast/v1/#").await?;
        let marker = accepted(control, "marker", "admin", &admin).await?;
        Ok(Acl {
            project,
            broker,
            observer,
            marker,
            runs: 0,
        })
    }

    fn password(&self, user: &str) -> Result<String> {
        Ok(self
            .project
            .var(&format!("MQTT_PASSWORD_{}", user.to_ascii_uppercase()))?
            .to_owned())
    }

    fn port(&self, listener: Listener) -> u16 {
        self.broker
            .port(match listener {
                Listener::Nodes => 1883,
                Listener::Control => 1884,
            })
            .unwrap()
    }

    /// `user` (client id `client_id`, on `listener`) publishes `forbidden` and `allowed`
    /// topics; returns what went wrong: an allowed message that never reached the
    /// observer, or a forbidden one that did. Forbidden ones go first; the last message is
    /// an allowed one (or, when `allowed` is empty, the marker client's, published after
    /// every PUBACK), so once it arrives every earlier one would have.
    async fn publishes(
        &mut self,
        listener: Listener,
        user: &str,
        client_id: &str,
        allowed: &[String],
        forbidden: &[String],
    ) -> Result<Vec<String>> {
        self.runs += 1;
        let nonce = format!("run{}-{client_id}", self.runs);
        let password = self.password(user)?;
        let mut client = accepted(self.port(listener), client_id, user, &password).await?;
        let payload = |i: usize| format!("{nonce} {i}").into_bytes();
        let mut messages: Vec<(String, Vec<u8>)> = forbidden
            .iter()
            .chain(allowed)
            .enumerate()
            .map(|(i, t)| (t.clone(), payload(i)))
            .collect();
        let mut last = messages.last().cloned().context("nothing to publish")?;
        if allowed.is_empty() {
            client.publish_all(&messages).await?;
            last = (
                topic(&format!("revocations/{KEY_ID}")),
                format!("{nonce} marker").into_bytes(),
            );
            self.marker.publish_all(std::slice::from_ref(&last)).await?;
            messages.push(last.clone());
        } else {
            client.publish_all(&messages).await?;
        }
        let mut arrived = BTreeSet::new();
        loop {
            match self.observer.next().await {
                Ok(Incoming::Publish { topic, payload }) => {
                    if payload.starts_with(nonce.as_bytes()) {
                        let done = (&topic, &payload) == (&last.0, &last.1);
                        arrived.insert((topic, payload));
                        if done {
                            break;
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => bail!("waiting for {user}'s messages: {e:#}"),
            }
        }
        let mut wrong = Vec::new();
        for (i, t) in forbidden.iter().chain(allowed).enumerate() {
            let got = arrived.contains(&(t.clone(), payload(i)));
            let may = i >= forbidden.len();
            if got != may {
                wrong.push(format!(
                    "{user} (client id {client_id}) {} publish {t}",
                    if may { "could not" } else { "could" }
                ));
            }
        }
        Ok(wrong)
    }

    /// Whether `user` connecting to `listener` is refused at CONNACK.
    async fn refused(
        &self,
        listener: Listener,
        user: Option<&str>,
        password: Option<String>,
    ) -> Result<Option<String>> {
        let id = format!("probe-{}", user.unwrap_or("anonymous"));
        let password = match (user, password) {
            (Some(_), Some(p)) => Some(p),
            (Some(u), None) => Some(self.password(u)?),
            (None, _) => None,
        };
        let credentials = user.zip(password.as_deref());
        Ok(
            match connect(self.port(listener), &id, credentials).await? {
                Connected::Refused(
                    ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword,
                ) => None,
                Connected::Refused(other) => Some(format!(
                    "{} on {listener:?}: refused, but with {other:?}",
                    user.unwrap_or("anonymous")
                )),
                Connected::Accepted(_) => Some(format!(
                    "{} on {listener:?}: accepted",
                    user.unwrap_or("anonymous")
                )),
            },
        )
    }
}

#[derive(Debug, Clone, Copy)]
enum Listener {
    /// 1883: ingest and broadcast nodes.
    Nodes,
    /// 1884: the load balancer and the operator.
    Control,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_credentials_write_only_their_own_presence_and_load() {
    let mut acl = Acl::start().await.unwrap();
    let wrong = acl
        .publishes(
            Listener::Nodes,
            "broadcast",
            "broadcast-r1",
            &[
                topic("nodes/broadcast-r1/presence"),
                topic("nodes/broadcast-r1/load"),
            ],
            &[
                topic("streams/s/r/manifest"),
                topic("ingest/ingest1/cert"),
                topic(&format!("revocations/{KEY_ID}")),
                topic("streams/s/announce"),
                topic("ingest/ingest1/load"),
                topic("nodes/broadcast-r2/presence"),
                topic("nodes/broadcast-r2/load"),
            ],
        )
        .await
        .unwrap();
    assert!(
        wrong.is_empty(),
        "{wrong:#?}\nmosquitto's log:\n{}",
        acl.broker.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_cannot_impersonate_another_ingest() {
    let mut acl = Acl::start().await.unwrap();
    let mut wrong = Vec::new();
    for (me, other) in [("ingest1", "ingest2"), ("ingest2", "ingest1")] {
        wrong.extend(
            acl.publishes(
                Listener::Nodes,
                me,
                me,
                &[
                    topic(&format!("ingest/{me}/cert")),
                    topic(&format!("nodes/{me}/presence")),
                    topic(&format!("ingest/{me}/load")),
                    topic("streams/s/r/manifest"),
                ],
                &[
                    // No announcement topic exists: nobody may write one.
                    topic("streams/s/announce"),
                    topic(&format!("ingest/{other}/cert")),
                    topic(&format!("nodes/{other}/presence")),
                    topic(&format!("ingest/{other}/load")),
                    topic(&format!("revocations/{KEY_ID}")),
                    topic("nodes/broadcast-r1/presence"),
                ],
            )
            .await
            .unwrap(),
        );
    }
    // Whatever client id it claims, an ingest cannot certify under another's name.
    wrong.extend(
        acl.publishes(
            Listener::Nodes,
            "ingest1",
            "ingest2",
            &[topic("ingest/ingest1/cert")],
            &[topic("ingest/ingest2/cert"), topic("ingest/ingest2/load")],
        )
        .await
        .unwrap(),
    );
    assert!(
        wrong.is_empty(),
        "{wrong:#?}\nmosquitto's log:\n{}",
        acl.broker.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_balancer_writes_nothing_and_the_operator_revokes() {
    let mut acl = Acl::start().await.unwrap();
    let mut wrong = acl
        .publishes(
            Listener::Control,
            "lb",
            "lb1",
            &[],
            &[
                topic("nodes/lb1/presence"),
                topic("nodes/lb1/load"),
                topic("nodes/broadcast-r1/presence"),
                topic(&format!("revocations/{KEY_ID}")),
                topic("streams/s/r/manifest"),
                topic("streams/s/announce"),
                topic("ingest/lb1/cert"),
            ],
        )
        .await
        .unwrap();
    wrong.extend(
        acl.publishes(
            Listener::Control,
            "admin",
            "operator",
            &[
                topic(&format!("revocations/{KEY_ID}")),
                topic("nodes/gone/presence"),
            ],
            &[topic("streams/s/r/manifest"), topic("ingest/ingest1/cert")],
        )
        .await
        .unwrap(),
    );
    assert!(
        wrong.is_empty(),
        "{wrong:#?}\nmosquitto's log:\n{}",
        acl.broker.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_and_other_listeners_users_are_refused() {
    let acl = Acl::start().await.unwrap();
    let mut wrong = Vec::new();
    let cases: Vec<(Listener, Option<&str>, Option<String>)> = vec![
        (Listener::Nodes, None, None),
        (Listener::Control, None, None),
        (
            Listener::Nodes,
            Some("ingest1"),
            Some("not-the-password".into()),
        ),
        (Listener::Nodes, Some("broadcast"), Some(String::new())),
        (
            Listener::Control,
            Some("admin"),
            Some("not-the-password".into()),
        ),
        (Listener::Nodes, Some("nobody"), Some("x".into())),
        // per_listener_settings: each listener knows only its own users.
        (Listener::Control, Some("ingest1"), None),
        (Listener::Control, Some("ingest2"), None),
        (Listener::Control, Some("broadcast"), None),
        (Listener::Nodes, Some("lb"), None),
        (Listener::Nodes, Some("admin"), None),
    ];
    for (listener, user, password) in cases {
        if let Some(w) = acl.refused(listener, user, password).await.unwrap() {
            wrong.push(w);
        }
    }
    // The same users are accepted where they belong (so the refusals above mean something).
    for (listener, user) in [
        (Listener::Nodes, "ingest1"),
        (Listener::Nodes, "ingest2"),
        (Listener::Nodes, "broadcast"),
        (Listener::Control, "lb"),
        (Listener::Control, "admin"),
    ] {
        let password = acl.password(user).unwrap();
        if let Err(e) = accepted(acl.port(listener), &format!("ok-{user}"), user, &password).await {
            wrong.push(format!("{e:#}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{wrong:#?}\nmosquitto's log:\n{}",
        acl.broker.log()
    );
}

// ----------------------------------------------------------------------------------------
