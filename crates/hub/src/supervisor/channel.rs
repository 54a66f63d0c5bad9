//! The hub's gRPC client connection to one spoke: HTTP/2 straight over the socketpair.
//!
//! tonic's `Channel` puts a buffer task and a reconnect layer in front of the connection. A spoke's
//! channel is one socketpair that can never reconnect, so the hub drives hyper's HTTP/2 client on it
//! directly, which saves a task hop on every call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bulkhead_proto::v1::spoke_service_client::SpokeServiceClient;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The origin the hub's requests to a spoke carry. A spoke serves only the hub, so it is never checked.
const SPOKE_ORIGIN: &str = "http://spoke.invalid";

/// A cloneable handle that sends requests over one spoke's HTTP/2 connection.
#[derive(Clone)]
pub struct SpokeConnection {
    sender: SendRequest<tonic::body::Body>,
}

impl tower::Service<http::Request<tonic::body::Body>> for SpokeConnection {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.sender.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.sender.send_request(request))
    }
}

/// The spoke's gRPC client type.
pub type SpokeClient = SpokeServiceClient<SpokeConnection>;

/// Runs the HTTP/2 handshake over `stream` and returns a client. The connection task ends when the
/// spoke closes its end, after which every call fails with UNAVAILABLE.
pub async fn connect(stream: tokio::net::UnixStream, app: String) -> Result<SpokeClient, hyper::Error> {
    let (sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(app = %app, %error, "spoke connection closed with an error");
        }
    });
    let origin = http::Uri::from_static(SPOKE_ORIGIN);
    Ok(SpokeServiceClient::with_origin(SpokeConnection { sender }, origin))
}
