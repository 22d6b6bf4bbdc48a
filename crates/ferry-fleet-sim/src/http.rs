//! One kept-alive HTTP/1.1 connection to the fleet server, as one
//! simulated agent (or the operator) holds it: reconnects when the server
//! closed it, and answers status, headers and body.
//!
//! Not a general client: no TLS, no redirects, no pooling; each agent owns
//! exactly one socket so that N agents open N connections.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST, IF_NONE_MATCH};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

use crate::SimError;

/// An answer: its status, headers and whole body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A connection that is opened on first use and again after it broke.
pub struct Conn {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            host: addr.to_string(),
            sender: None,
        }
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, SimError> {
        let usable = match &mut self.sender {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            let stream = tokio::net::TcpStream::connect(self.addr)
                .await
                .map_err(SimError::Connect)?;
            // Small requests and answers: do not hold them back for Nagle.
            stream.set_nodelay(true).map_err(SimError::Connect)?;
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(SimError::Http)?;
            // The connection's driver ends when either side closes it; an
            // error there shows up as the next request's error.
            tokio::spawn(async move {
                let _ = connection.await;
            });
            self.sender = Some(sender);
        }
        self.sender.as_mut().ok_or(SimError::NoConnection)
    }

    /// Sends one request with a bearer `token` and, when given, a JSON
    /// `body` and an `If-None-Match` tag.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Vec<u8>>,
        etag: Option<&str>,
    ) -> Result<Answer, SimError> {
        let host = self.host.clone();
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, host)
            .header(AUTHORIZATION, format!("Bearer {token}"));
        if body.is_some() {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some(tag) = etag {
            builder = builder.header(IF_NONE_MATCH, tag);
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| SimError::Request(e.to_string()))?;
        let sender = self.connect().await?;
        let answer = match sender.send_request(request).await {
            Ok(answer) => answer,
            Err(e) => {
                // A broken connection is opened anew on the next request.
                self.sender = None;
                return Err(SimError::Http(e));
            }
        };
        let status = answer.status();
        let headers = answer.headers().clone();
        let body = match answer.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                self.sender = None;
                return Err(SimError::Http(e));
            }
        };
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}
