//! What a takeover carries from the old OS into the new one, in one piece:
//! stage 1 [`collect`]s the network configuration, the identity and the
//! backup into a [`Carried`] (JSON, handed to stage 2), and stage 2, with
//! the new OS's partitions mounted after the flash, [`apply`]s it and gets
//! every file written with its sha256 for the events.
//!
//! Not for: reading or writing any one of them (`network`, `identity`,
//! `backup` do), nor mounting the partitions (stage 2).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backup::{self, Backup, BackupError, WrittenFile};
use crate::config::Config;
use crate::identity::{self, Identity, IdentityError, IdentityOptions};
use crate::network::{self, Network, NetworkError};

/// Where NetworkManager keyfiles go, under the new OS's root.
pub const KEYFILE_DIR: &str = "etc/NetworkManager/system-connections";

/// Why what is carried could not be collected or written.
#[derive(Debug, thiserror::Error)]
pub enum CarryError {
    #[error("network: {0}")]
    Network(#[from] NetworkError),
    #[error("identity: {0}")]
    Identity(#[from] IdentityError),
    #[error("backup: {0}")]
    Backup(#[from] BackupError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Everything stage 1 hands to stage 2 to write into the new OS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    /// Empty when the config says `[network] carry = false`.
    #[serde(with = "wire::network")]
    pub network: Network,
    /// Only the parts the config's `[identity]` keeps.
    #[serde(with = "wire::identity")]
    pub identity: Identity,
    pub backup: Backup,
    /// What the readers noticed without refusing (identity notes, network
    /// warnings), for the events.
    pub notes: Vec<String>,
}

/// What stage 1 needs besides the config to collect.
#[derive(Debug, Clone, Copy)]
pub struct CollectOptions<'a> {
    /// Where the backup's archive and manifest are made.
    pub staging: &'a Path,
    /// The image file, told to the backup script.
    pub image: Option<&'a Path>,
    /// Users besides root whose authorized_keys are carried (the config
    /// has no field for them yet).
    pub users: &'a [String],
}

/// Stage 1: reads the network configuration and the identity of the OS
/// under `root` as `config` asks, and makes the backup (`backup::make`).
pub fn collect(
    root: &Path,
    config: &Config,
    options: CollectOptions<'_>,
) -> Result<Carried, CarryError> {
    let mut notes = Vec::new();
    let network = if config.network.carry {
        let network = network::read_root(root)?;
        notes.extend(network.warnings.iter().map(|w| w.to_string()));
        network
    } else {
        Network::default()
    };
    let collected = identity::collect(
        root,
        &IdentityOptions {
            users: options.users.to_vec(),
            machine_id: config.identity.machine_id,
        },
    )?;
    notes.extend(collected.notes);
    let mut identity = collected.identity;
    if !config.identity.hostname {
        identity.hostname = None;
    }
    if !config.identity.ssh_host_keys {
        identity.host_keys.clear();
    }
    if !config.identity.authorized_keys {
        identity.authorized_keys.clear();
    }
    let backup = backup::make(&config.backup, root, options.staging, options.image)?;
    notes.extend(backup.skipped.iter().cloned());
    Ok(Carried {
        network,
        identity,
        backup,
        notes,
    })
}

/// What [`apply`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CarryReport {
    /// NetworkManager keyfiles, in the new root.
    pub network: Vec<WrittenFile>,
    /// Hostname, host keys, authorized_keys, machine-id, in the new root.
    pub identity: Vec<WrittenFile>,
    /// The backup in the data partition, read back and verified.
    pub backup: Vec<WrittenFile>,
}

impl CarryReport {
    /// Every file written, in the order written.
    pub fn files(&self) -> impl Iterator<Item = &WrittenFile> {
        self.network
            .iter()
            .chain(&self.identity)
            .chain(&self.backup)
    }
}

/// Stage 2: writes `carried` into the new OS: the network as
/// NetworkManager keyfiles in `new_root/etc/NetworkManager/system-connections`
/// (none when there is no connection), the identity into `new_root`, the
/// backup into the data partition mounted at `data_dir` (verified by
/// reading back). Stops at the first error; what was written before it
/// stays (the new OS is not booted until stage 2 succeeds).
pub fn apply(
    new_root: &Path,
    data_dir: &Path,
    carried: &Carried,
) -> Result<CarryReport, CarryError> {
    let network = if carried.network.connections.is_empty() {
        Vec::new()
    } else {
        let dir = new_root.join(KEYFILE_DIR);
        let paths = network::write_keyfiles(&carried.network.connections, &dir)?;
        hashed(paths)?
    };
    let identity = hashed(identity::write(&carried.identity, new_root)?)?;
    let backup = backup::write(&carried.backup, data_dir)?.files;
    Ok(CarryReport {
        network,
        identity,
        backup,
    })
}

fn hashed(paths: Vec<PathBuf>) -> Result<Vec<WrittenFile>, CarryError> {
    paths
        .into_iter()
        .map(|path| match ferry_fetch::sha256_file(&path) {
            Ok((sha256, size)) => Ok(WrittenFile { path, sha256, size }),
            Err(source) => Err(CarryError::Io { path, source }),
        })
        .collect()
}

/// The JSON form of the network and identity models, which are not
/// serde types themselves (their modules read and write OS files, not
/// hand-off documents).
mod wire {
    use std::path::PathBuf;

    use serde::{Deserialize, Serialize};

    use crate::identity::Hostname;
    use crate::network::{Connection, Warning};

    pub mod network {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        use crate::network::Network;

        #[derive(Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wire {
            connections: Vec<super::Connection>,
            warnings: Vec<super::Warning>,
        }

        pub fn serialize<S: Serializer>(n: &Network, s: S) -> Result<S::Ok, S::Error> {
            Wire {
                connections: n.connections.clone(),
                warnings: n.warnings.clone(),
            }
            .serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Network, D::Error> {
            let w = Wire::deserialize(d)?;
            Ok(Network {
                connections: w.connections,
                warnings: w.warnings,
            })
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct HostKey {
        name: String,
        private: Vec<u8>,
        public: Option<Vec<u8>>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct AuthorizedKeys {
        user: String,
        home: PathBuf,
        content: Vec<u8>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Identity {
        hostname: Option<Hostname>,
        host_keys: Vec<HostKey>,
        authorized_keys: Vec<AuthorizedKeys>,
        machine_id: Option<String>,
    }

    pub mod identity {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        use crate::identity::{AuthorizedKeys, HostKey, Identity};

        pub fn serialize<S: Serializer>(i: &Identity, s: S) -> Result<S::Ok, S::Error> {
            super::Identity {
                hostname: i.hostname.clone(),
                host_keys: i
                    .host_keys
                    .iter()
                    .map(|k| super::HostKey {
                        name: k.name.clone(),
                        private: k.private.clone(),
                        public: k.public.clone(),
                    })
                    .collect(),
                authorized_keys: i
                    .authorized_keys
                    .iter()
                    .map(|k| super::AuthorizedKeys {
                        user: k.user.clone(),
                        home: k.home.clone(),
                        content: k.content.clone(),
                    })
                    .collect(),
                machine_id: i.machine_id.clone(),
            }
            .serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Identity, D::Error> {
            let w = super::Identity::deserialize(d)?;
            Ok(Identity {
                hostname: w.hostname,
                host_keys: w
                    .host_keys
                    .into_iter()
                    .map(|k| HostKey {
                        name: k.name,
                        private: k.private,
                        public: k.public,
                    })
                    .collect(),
                authorized_keys: w
                    .authorized_keys
                    .into_iter()
                    .map(|k| AuthorizedKeys {
                        user: k.user,
                        home: k.home,
                        content: k.content,
                    })
                    .collect(),
                machine_id: w.machine_id,
            })
        }
    }
}
