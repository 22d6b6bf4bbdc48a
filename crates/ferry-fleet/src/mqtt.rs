//! The hint's transport through an MQTT broker (Mosquitto): the server's
//! notifier, which publishes a hint to each device that newly has a
//! command waiting, and the agent's listener, which subscribes to its own
//! topic and turns hints into early polls through the [`HintGate`].
//!
//! Everything here is optional and best effort: a broker that is down or
//! unreachable costs only latency, since devices poll over HTTP on their
//! interval whatever happens here; both sides reconnect on their own. Not
//! for the hint's format (hint.rs) nor for what a poll does (agent.rs).

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, Client, Connection, Event, MqttOptions, Packet, QoS, SubscribeReasonCode,
};
use sqlx::Row;

use crate::api::AppState;
use crate::hint::{decode_hint, poll_topic, Hint, HintError, HintGate, Hinted, Reason};

/// The port a broker URL without one means (MQTT's registered port).
pub const DEFAULT_MQTT_PORT: u16 = 1883;
/// How often the server looks for newly assigned devices.
const NOTIFY_TICK: Duration = Duration::from_secs(1);
/// The longest one publish may wait for room in the client's queue.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
/// Waits between reconnection attempts, doubling from the first to the last.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Heard payloads waiting for the agent's loop; more are dropped, which a
/// flood of hints loses nothing by (the gate lets out one poll anyway).
const HEARD_QUEUE: usize = 64;
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// Why the MQTT side cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MqttError {
    #[error("{url:?} is not a broker URL ({why}); expected mqtt://HOST:PORT")]
    Url { url: String, why: &'static str },
    #[error(transparent)]
    Topic(#[from] HintError),
}

/// Where the broker is: `mqtt://HOST[:PORT]`. Plain MQTT only: a hint
/// carries nothing secret and nothing the agent trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
}

impl FromStr for BrokerUrl {
    type Err = MqttError;

    fn from_str(url: &str) -> Result<BrokerUrl, MqttError> {
        let bad = |why| MqttError::Url {
            url: url.to_string(),
            why,
        };
        if url.starts_with("mqtts://") {
            return Err(bad("TLS to the broker is not supported"));
        }
        let rest = url
            .strip_prefix("mqtt://")
            .ok_or_else(|| bad("the scheme must be mqtt://"))?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '@', '?', '#']) {
            return Err(bad("a path, user or query is not taken"));
        }
        // [v6]:port, [v6], host:port, host
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address lacks its ']'"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(bad("the host is empty or holds a space"));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("the port is not a number in 1-65535"))?,
            None => DEFAULT_MQTT_PORT,
        };
        Ok(BrokerUrl {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "mqtt://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "mqtt://{}:{}", self.host, self.port)
        }
    }
}

fn options(client_id: String, broker: &BrokerUrl) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    options.set_keep_alive(KEEP_ALIVE);
    // Nothing is kept across connections: a hint missed while away is made
    // good by the poll a reconnect causes (agent) or by the next tick's
    // look at the assignments (server).
    options.set_clean_session(true);
    options
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------- server

/// Starts the server's notifier on the running tokio runtime: a task that
/// keeps the broker connection up (warning once per outage, reconnecting
/// with backoff) and a task that, every second, advances the active
/// rollouts (so a dwell that ran out opens the next wave without waiting
/// for a poll) and publishes a hint to each device newly assigned a
/// command, which covers a rollout created, a wave opened and a rollout
/// resumed (its assignments count as new again).
pub(crate) fn spawn_notifier(state: Arc<AppState>, broker: BrokerUrl) {
    let (client, mut eventloop) = AsyncClient::new(
        options(format!("ferry-server-{}", random_suffix()), &broker),
        1024,
    );
    let connected = Arc::new(AtomicBool::new(false));
    let up = connected.clone();
    let shown = broker.to_string();
    tokio::spawn(async move {
        let mut backoff = MIN_BACKOFF;
        let mut warned = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    up.store(true, Ordering::SeqCst);
                    warned = false;
                    backoff = MIN_BACKOFF;
                    eprintln!("mqtt: connected to {shown}; hinting devices of new commands");
                }
                Ok(_) => {}
                Err(error) => {
                    let was_up = up.swap(false, Ordering::SeqCst);
                    if was_up || !warned {
                        eprintln!(
                            "warning: the MQTT broker {shown} cannot be reached ({error}); \
                             devices still poll over HTTP; reconnecting"
                        );
                        warned = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    });
    tokio::spawn(async move {
        let mut hinted: HashSet<(String, String)> = HashSet::new();
        let mut tick = tokio::time::interval(NOTIFY_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(error) = notify_once(&state, &client, &connected, &mut hinted).await {
                eprintln!("warning: the MQTT notifier cannot read the assignments: {error}");
            }
        }
    });
}

/// One look at the assignments: publishes to every `(device, command)`
/// assigned in an active rollout that was not hinted yet, and forgets the
/// ones no longer waiting (run, or their rollout paused) so a resume hints
/// them again. A hint not handed to the broker is tried next tick.
async fn notify_once(
    state: &AppState,
    client: &AsyncClient,
    connected: &AtomicBool,
    hinted: &mut HashSet<(String, String)>,
) -> Result<(), crate::rollout::RolloutError> {
    let active = sqlx::query("SELECT id FROM rollouts WHERE state = 'active'")
        .fetch_all(state.store.pool())
        .await?;
    for row in active {
        let id: String = row.try_get(0)?;
        state.store.advance(&id).await?;
    }
    let rows = sqlx::query(
        "SELECT rd.device_id, rd.command_id FROM rollout_devices rd \
         JOIN rollouts r ON r.id = rd.rollout_id \
         WHERE r.state = 'active' AND rd.state = 'assigned' AND rd.command_id IS NOT NULL",
    )
    .fetch_all(state.store.pool())
    .await?;
    let mut waiting = HashSet::with_capacity(rows.len());
    for row in rows {
        let device: String = row.try_get(0)?;
        let command: String = row.try_get(1)?;
        waiting.insert((device, command));
    }
    hinted.retain(|key| waiting.contains(key));
    if !connected.load(Ordering::SeqCst) {
        return Ok(());
    }
    let payload = Hint::new(Reason::Assignment).encode();
    for key in waiting {
        if hinted.contains(&key) {
            continue;
        }
        let Ok(topic) = poll_topic(&key.0) else {
            // A device id the server did not make cannot be hinted; it
            // still polls.
            continue;
        };
        let publish = client.publish(topic, QoS::AtLeastOnce, false, payload.clone());
        match tokio::time::timeout(PUBLISH_TIMEOUT, publish).await {
            Ok(Ok(())) => {
                hinted.insert(key);
            }
            // The queue is stuck (the broker went away mid-tick): the rest
            // wait for the next tick.
            Ok(Err(_)) | Err(_) => break,
        }
    }
    Ok(())
}

// ----------------------------------------------------------------- agent

/// What the listener thread heard, for the agent's loop.
enum Heard {
    Payload(Result<Hint, HintError>),
    /// Subscribed; `again` after a reconnect, when hints may have been missed.
    Subscribed {
        again: bool,
    },
    Lost(String),
}

/// What the broker connection did, for the agent's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerNote {
    Subscribed {
        broker: String,
        topic: String,
    },
    Lost {
        broker: String,
        message: String,
    },
    /// The listener thread ended; the agent goes on polling on its interval.
    Stopped,
}

impl fmt::Display for BrokerNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerNote::Subscribed { broker, topic } => {
                write!(f, "mqtt: subscribed to {topic} at {broker}")
            }
            BrokerNote::Lost { broker, message } => write!(
                f,
                "warning: the MQTT broker {broker} cannot be reached ({message}); \
                 polling over HTTP on the interval, reconnecting"
            ),
            BrokerNote::Stopped => write!(
                f,
                "warning: the MQTT listener stopped; polling over HTTP on the interval"
            ),
        }
    }
}

/// Why the agent's wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// The interval ran out: poll.
    Interval,
    /// Hints (or payloads that were not hints) came in: poll now.
    Hinted(Hinted),
    /// Something to log; the wait goes on to the same deadline.
    Broker(BrokerNote),
}

/// The agent's side: a thread holding the broker connection (rumqttc's
/// synchronous client), subscribed at QoS 1 to the device's own topic and
/// feeding what it hears to [`HintListener::wait`], which the agent's loop
/// waits on instead of sleeping out its interval.
pub struct HintListener {
    heard: Option<mpsc::Receiver<Heard>>,
    gate: HintGate,
    broker: String,
    topic: String,
}

impl HintListener {
    /// Starts listening for `device_id`'s hints. Does not wait for the
    /// broker: one that is down is retried in the background.
    pub fn start(
        broker: &BrokerUrl,
        device_id: &str,
        gap: Duration,
    ) -> Result<HintListener, MqttError> {
        let topic = poll_topic(device_id)?;
        let (client, connection) = Client::new(
            options(
                format!("ferry-agent-{device_id}-{}", random_suffix()),
                broker,
            ),
            16,
        );
        let (tx, rx) = mpsc::sync_channel(HEARD_QUEUE);
        let thread_topic = topic.clone();
        std::thread::Builder::new()
            .name("mqtt-hints".into())
            .spawn(move || listen(connection, client, thread_topic, tx))
            .map_err(|_| MqttError::Url {
                url: broker.to_string(),
                why: "no thread could be started for it",
            })?;
        let mut gate = HintGate::new(gap);
        // The agent polls right after starting this: the gap counts from now.
        gate.polled(Instant::now());
        Ok(HintListener {
            heard: Some(rx),
            gate,
            broker: broker.to_string(),
            topic,
        })
    }

    /// Waits until `deadline` (the interval's end) or until hints let a
    /// poll out through the gate, whichever comes first; returns early
    /// with a [`Wake::Broker`] note for the log, after which the caller
    /// waits again for the same deadline.
    pub fn wait(&mut self, deadline: Instant) -> Wake {
        loop {
            let now = Instant::now();
            if let Some(hinted) = self.gate.take(now) {
                return Wake::Hinted(hinted);
            }
            if now >= deadline {
                self.gate.polled(now);
                return Wake::Interval;
            }
            let until = self.gate.due().map_or(deadline, |due| due.min(deadline));
            let timeout = until.saturating_duration_since(now);
            let Some(heard) = &self.heard else {
                std::thread::sleep(timeout);
                continue;
            };
            match heard.recv_timeout(timeout) {
                Ok(Heard::Payload(decoded)) => self.gate.heard(decoded),
                Ok(Heard::Subscribed { again }) => {
                    if again {
                        self.gate.heard(Ok(Hint::new(Reason::Other)));
                    }
                    return Wake::Broker(BrokerNote::Subscribed {
                        broker: self.broker.clone(),
                        topic: self.topic.clone(),
                    });
                }
                Ok(Heard::Lost(message)) => {
                    return Wake::Broker(BrokerNote::Lost {
                        broker: self.broker.clone(),
                        message,
                    })
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.heard = None;
                    return Wake::Broker(BrokerNote::Stopped);
                }
            }
        }
    }
}

/// The listener thread: drives the connection, subscribes after every
/// connect (the session is clean), decodes what arrives on the topic.
/// Ends when the agent's side is gone.
fn listen(mut connection: Connection, client: Client, topic: String, tx: SyncSender<Heard>) {
    let mut backoff = MIN_BACKOFF;
    let mut up = false;
    let mut told_down = false;
    let mut subscribed_before = false;
    loop {
        let Ok(event) = connection.recv() else {
            return;
        };
        let heard = match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = MIN_BACKOFF;
                if client
                    .try_subscribe(topic.clone(), QoS::AtLeastOnce)
                    .is_err()
                {
                    return;
                }
                None
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Failure))
                {
                    Some(Heard::Lost(format!(
                        "it refused the subscription to {topic}"
                    )))
                } else {
                    up = true;
                    told_down = false;
                    let again = subscribed_before;
                    subscribed_before = true;
                    Some(Heard::Subscribed { again })
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) if publish.topic == topic => {
                Some(Heard::Payload(decode_hint(&publish.payload)))
            }
            Ok(_) => None,
            Err(error) => {
                let tell = up || !told_down;
                up = false;
                told_down = true;
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                tell.then(|| Heard::Lost(error.to_string()))
            }
        };
        if let Some(heard) = heard {
            match tx.try_send(heard) {
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_with_and_without_a_port() {
        let url: BrokerUrl = "mqtt://127.0.0.1:18830".parse().expect("a URL");
        assert_eq!(url.host, "127.0.0.1");
        assert_eq!(url.port, 18830);
        assert_eq!(url.to_string(), "mqtt://127.0.0.1:18830");
        let url: BrokerUrl = "mqtt://broker.lan/".parse().expect("a URL");
        assert_eq!(url.port, DEFAULT_MQTT_PORT);
        let url: BrokerUrl = "mqtt://[::1]:1884".parse().expect("a URL");
        assert_eq!(url.host, "::1");
        assert_eq!(url.to_string(), "mqtt://[::1]:1884");
    }

    #[test]
    fn bad_broker_urls_say_why() {
        for (url, why) in [
            ("127.0.0.1:1883", "scheme"),
            ("http://h:1", "scheme"),
            ("mqtts://h:8883", "TLS"),
            ("mqtt://", "host"),
            ("mqtt://h:0", "port"),
            ("mqtt://h:99999", "port"),
            ("mqtt://h:x", "port"),
            ("mqtt://u@h", "user"),
            ("mqtt://h/topic", "path"),
            ("mqtt://[::1", "']'"),
        ] {
            match url.parse::<BrokerUrl>() {
                Err(e) => assert!(e.to_string().contains(why), "{url}: {e}"),
                Ok(parsed) => panic!("{url} parsed as {parsed:?}"),
            }
        }
    }

    #[test]
    fn an_unreachable_broker_is_reported_and_the_wait_still_ends_on_time() {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let broker: BrokerUrl = format!("mqtt://127.0.0.1:{port}").parse().expect("URL");
        let mut listener =
            HintListener::start(&broker, "dev-x", Duration::from_secs(5)).expect("starts");
        let start = Instant::now();
        let deadline = start + Duration::from_millis(1500);
        let mut notes = Vec::new();
        loop {
            match listener.wait(deadline) {
                Wake::Interval => break,
                Wake::Broker(note) => notes.push(note),
                Wake::Hinted(h) => panic!("no broker, no hint: {h:?}"),
            }
        }
        assert!(start.elapsed() >= Duration::from_millis(1500));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert!(
            matches!(notes.first(), Some(BrokerNote::Lost { .. })),
            "{notes:?}"
        );
        assert_eq!(notes.len(), 1, "told once per outage: {notes:?}");
    }
}
