//! QueryService: runs a query and streams its events.

use std::pin::Pin;
use std::sync::Arc;

use bulkhead_proto::v1::query_service_server::QueryService;
use bulkhead_proto::v1::{QueryEvent, QueryRequest};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::QueryEngine;
use crate::flow::Caller;
use crate::service::principal;

/// Events buffered between a query and its gRPC stream.
const STREAM_BUFFER: usize = 64;

#[derive(Clone)]
pub struct QueryServer {
    engine: Arc<QueryEngine>,
}

impl QueryServer {
    pub fn new(engine: Arc<QueryEngine>) -> QueryServer {
        QueryServer { engine }
    }
}

#[tonic::async_trait]
impl QueryService for QueryServer {
    type QueryStream = Pin<Box<dyn Stream<Item = Result<QueryEvent, Status>> + Send>>;

    async fn query(
        &self,
        request: Request<QueryRequest>,
    ) -> Result<Response<Self::QueryStream>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let caller = Caller {
            principal,
            session: request.session_id,
        };
        tracing::info!(principal = %caller.principal, session = %caller.session, apps = ?request.apps, "query");
        let (sender, receiver) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        let engine = self.engine.clone();
        tokio::spawn(async move {
            let events = sender.clone();
            if let Err(error) = engine
                .query(caller, request.text, request.apps, events)
                .await
            {
                let _ = sender.send(Err(Status::from(error))).await;
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
        Ok(Response::new(Box::pin(stream)))
    }
}
