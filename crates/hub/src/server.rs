//! The hub's listeners: the Unix socket (mode 0660) and, with a bearer token, TCP. Both serve the
//! agent and operator services, gRPC health checking and server reflection.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use bulkhead_proto::v1::agent_service_server::AgentServiceServer;
use bulkhead_proto::v1::approval_service_server::ApprovalServiceServer;
use bulkhead_proto::v1::catalog_service_server::CatalogServiceServer;
use bulkhead_proto::v1::log_service_server::LogServiceServer;
use bulkhead_proto::v1::operator_service_server::OperatorServiceServer;
use bulkhead_proto::v1::query_service_server::QueryServiceServer;
use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::service::Routes;
use tonic::{Request, Status};

use crate::approvals_service::ApprovalsService;
use crate::catalog::service::CatalogRpc;
use crate::hub::Hub;
use crate::logs_service::LogsService;
use crate::query::service::QueryServer;
use crate::query::QueryEngine;
use crate::service::HubService;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("another bulkheadd is already serving on {0}; stop it first or set [server] socket to another path")]
    SocketInUse(String),
    #[error("{0} exists and is not a socket; remove it or set [server] socket to another path")]
    NotASocket(String),
    #[error("cannot listen on {path}: {source}")]
    Bind { path: String, source: std::io::Error },
    #[error("cannot set up the socket {path}: {source}")]
    Socket { path: String, source: std::io::Error },
    #[error("cannot build the reflection service: {0}")]
    Reflection(String),
    #[error("cannot set up natural-language queries: {0}")]
    Query(crate::error::HubError),
}

/// Binds the Unix socket: removes a stale socket file, refuses to steal one that a live hub serves,
/// and sets mode 0660 and the configured group.
pub fn bind_unix(path: &Path, group: Option<u32>) -> Result<UnixListener, ServerError> {
    let display = path.display().to_string();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| ServerError::Socket { path: display.clone(), source })?;
    }
    if let Ok(metadata) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !metadata.file_type().is_socket() {
            return Err(ServerError::NotASocket(display));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServerError::SocketInUse(display));
        }
        std::fs::remove_file(path).map_err(|source| ServerError::Socket { path: display.clone(), source })?;
    }
    let listener = UnixListener::bind(path).map_err(|source| ServerError::Bind { path: display.clone(), source })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|source| ServerError::Socket { path: display.clone(), source })?;
    if let Some(gid) = group {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(|source| ServerError::Socket { path: display, source })?;
    }
    Ok(listener)
}

/// Builds the routes every listener serves.
pub async fn routes(hub: Arc<Hub>) -> Result<Routes, ServerError> {
    let service = HubService::new(hub.clone());
    let queries = QueryEngine::new(hub.clone()).map_err(ServerError::Query)?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<AgentServiceServer<HubService>>().await;
    health.set_serving::<OperatorServiceServer<HubService>>().await;
    health.set_serving::<ApprovalServiceServer<ApprovalsService>>().await;
    health.set_serving::<CatalogServiceServer<CatalogRpc>>().await;
    health.set_serving::<QueryServiceServer<QueryServer>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(bulkhead_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|error| ServerError::Reflection(error.to_string()))?;
    let mut routes = Routes::new(AgentServiceServer::new(service.clone()));
    routes = routes.add_service(OperatorServiceServer::new(service));
    routes = routes.add_service(LogServiceServer::new(LogsService::new(hub.clone())));
    routes = routes.add_service(ApprovalServiceServer::new(ApprovalsService::new(hub.clone())));
    routes = routes.add_service(CatalogServiceServer::new(CatalogRpc::new(hub)));
    routes = routes.add_service(QueryServiceServer::new(QueryServer::new(queries)));
    routes = routes.add_service(health_service);
    routes = routes.add_service(reflection);
    Ok(routes)
}

/// Serves `routes` on the Unix listener until `shutdown` resolves.
pub async fn serve_unix(
    listener: UnixListener,
    routes: Routes,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await
}

/// Serves `routes` on TCP, rejecting every request without `authorization: Bearer <token>`.
pub async fn serve_tcp(
    listener: TcpListener,
    routes: Routes,
    token: String,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let expected = format!("Bearer {token}");
    let check = move |request: Request<()>| -> Result<Request<()>, Status> {
        let presented = request.metadata().get("authorization").and_then(|value| value.to_str().ok());
        match presented {
            Some(value) if constant_time_eq(value.as_bytes(), expected.as_bytes()) => Ok(request),
            Some(_) => Err(Status::unauthenticated("invalid bearer token")),
            None => Err(Status::unauthenticated(
                "missing bearer token; send the header `authorization: Bearer <token>`",
            )),
        }
    };
    tonic::transport::Server::builder()
        .layer(tonic::service::InterceptorLayer::new(check))
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"Bearer abc", b"Bearer abc"));
        assert!(!constant_time_eq(b"Bearer abd", b"Bearer abc"));
        assert!(!constant_time_eq(b"Bearer ab", b"Bearer abc"));
    }

    #[test]
    fn stale_socket_is_replaced() {
        let dir = std::env::temp_dir().join(format!("bulkhead-sock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("hub.sock");
        std::fs::write(&path, b"").expect("regular file");
        assert!(matches!(bind_unix(&path, None), Err(ServerError::NotASocket(_))));
        std::fs::remove_file(&path).expect("remove regular file");
        drop(std::os::unix::net::UnixListener::bind(&path).expect("stale socket"));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let listener = bind_unix(&path, None).expect("bind over a stale file");
            let mode = std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
            assert_eq!(mode, 0o660);
            let second = bind_unix(&path, None);
            assert!(matches!(second, Err(ServerError::SocketInUse(_))));
            drop(listener);
        });
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
