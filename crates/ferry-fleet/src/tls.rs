//! TLS for both ends of the fleet's wire, with rustls and its ring
//! provider: the server's certificate and key (and, for mutual TLS, the CA
//! its clients' certificates must chain to) read from PEM files, the
//! listener that does each handshake off the accept loop, the clients'
//! trust (a private CA) and certificate, and the check that binds a device
//! token to the client certificate that names the device.
//!
//! Not for deciding who may call what (the API's), nor for making
//! certificates (an operator's PKI; tests use rcgen).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client may take over its handshake before it is dropped, so
/// a silent connection does not hold anything for long.
const HANDSHAKE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the {what} {path} holds no PEM {expected}")]
    Empty {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("the {what} {path} is not valid PEM: {message}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("the {what} {path} is refused: {message}")]
    Refused {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error(
        "a client certificate needs its key and a key its certificate: give both --cert and --key"
    )]
    HalfPair,
    #[error("the TLS setup is refused: {0}")]
    Config(String),
}

impl TlsError {
    /// The file at fault, when one is.
    pub fn path(&self) -> Option<&Path> {
        match self {
            TlsError::Read { path, .. }
            | TlsError::Empty { path, .. }
            | TlsError::Pem { path, .. }
            | TlsError::Refused { path, .. } => Some(path),
            TlsError::HalfPair | TlsError::Config(_) => None,
        }
    }
}

/// The server's side: `ferry fleet serve --tls-cert --tls-key [--client-ca]`.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The certificate chain (leaf first), PEM.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key: PathBuf,
    /// With it, every client must present a certificate that chains to
    /// this CA, and a device token is accepted only over a connection
    /// whose certificate names that device.
    pub client_ca: Option<PathBuf>,
}

/// A client's side: `--ca` to trust, `--cert`/`--key` to present.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// The CA (PEM) the server's certificate must chain to, instead of
    /// the public roots.
    pub ca: Option<PathBuf>,
    /// The client certificate (PEM) for a server with `--client-ca`.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate in a PEM file; none is an error.
fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_path_buf(),
            expected: "CERTIFICATE",
        });
    }
    Ok(certs)
}

fn key(what: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(what, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Empty {
            what,
            path: path.to_path_buf(),
            expected: "PRIVATE KEY",
        },
        e => TlsError::Pem {
            what,
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    })
}

fn roots(what: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs(what, path)? {
        roots.add(cert).map_err(|e| TlsError::Refused {
            what,
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    Ok(roots)
}

impl ServerTls {
    /// Reads the files into a server configuration; a missing, empty or
    /// mismatched file is an error naming it.
    pub fn config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let chain = certs("TLS certificate", &self.cert)?;
        let key = key("TLS key", &self.key)?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match &self.client_ca {
            Some(ca) => {
                let roots = roots("client CA", ca)?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| TlsError::Refused {
                            what: "client CA",
                            path: ca.clone(),
                            message: e.to_string(),
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Refused {
                what: "TLS key",
                path: self.key.clone(),
                message: format!("{e} (does it belong to {}?)", self.cert.display()),
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ClientTls {
    /// Whether anything differs from plain defaults (public roots, no
    /// client certificate).
    pub fn is_default(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }

    /// Reads the files into a client configuration.
    pub fn config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let roots = match &self.ca {
            Some(ca) => roots("CA", ca)?,
            None => RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots);
        let config = match (&self.cert, &self.key) {
            (Some(cert), Some(key_path)) => {
                let chain = certs("client certificate", cert)?;
                let key = key("client key", key_path)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| TlsError::Refused {
                        what: "client key",
                        path: key_path.clone(),
                        message: format!("{e} (does it belong to {}?)", cert.display()),
                    })?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(TlsError::HalfPair),
        };
        Ok(Arc::new(config))
    }

    /// An HTTP(S) client with these settings and the fleet's timeouts.
    pub fn http_agent(&self) -> Result<ureq::Agent, TlsError> {
        if self.is_default() {
            return Ok(plain_agent());
        }
        Ok(agent_builder().tls_config(self.config()?).build())
    }
}

fn agent_builder() -> ureq::AgentBuilder {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
}

/// An HTTP client with ureq's own TLS defaults (the public roots).
pub(crate) fn plain_agent() -> ureq::Agent {
    agent_builder().build()
}

/// What the server knows of the other end of a connection: over mutual
/// TLS, the certificate it presented.
#[derive(Debug, Clone)]
pub struct Peer {
    pub cert: Option<CertificateDer<'static>>,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Peer {
        stream.remote_addr().clone()
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(_: axum::serve::IncomingStream<'_, TcpListener>) -> Peer {
        Peer { cert: None }
    }
}

/// Whether `cert` names `device` as a DNS name in its subject alternative
/// names (how a client certificate says which device it belongs to).
pub fn cert_names_device(cert: &CertificateDer<'_>, device: &str) -> bool {
    let Ok(name) = ServerName::try_from(device.to_string()) else {
        return false;
    };
    webpki::EndEntityCert::try_from(cert)
        .is_ok_and(|leaf| leaf.verify_is_valid_for_subject_name(&name).is_ok())
}

/// A TCP listener whose connections come out already through their TLS
/// handshake. Handshakes run in tasks of their own, so one slow or
/// failing client never holds up the others' accepts.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, Peer)>,
}

impl TlsListener {
    /// Starts accepting on `tcp`; must run inside the tokio runtime.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> TlsListener {
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (stream, _) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    // Out of file descriptors and the like: wait, go on.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    // A failed handshake (plain HTTP, an untrusted or no
                    // client certificate) just closes that connection.
                    let Ok(Ok(tls)) =
                        tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let cert = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|cert| cert.clone().into_owned());
                    let _ = tx.send((tls, Peer { cert })).await;
                });
            }
        });
        TlsListener { ready }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept loop ended (the runtime is going down): no more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Peer> {
        Ok(Peer { cert: None })
    }
}
