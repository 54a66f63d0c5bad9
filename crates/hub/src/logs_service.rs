//! LogService: streams an app's captured stderr from [`crate::app_logs`].

use std::pin::Pin;
use std::sync::Arc;

use bulkhead_proto::v1::log_service_server::LogService;
use bulkhead_proto::v1::{LogLine, StreamLogsRequest};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::app_logs::{self, LogEntry};
use crate::hub::Hub;

/// Lines buffered between the follow task and the gRPC stream.
const STREAM_BUFFER: usize = 256;

#[derive(Clone)]
pub struct LogsService {
    hub: Arc<Hub>,
}

impl LogsService {
    pub fn new(hub: Arc<Hub>) -> LogsService {
        LogsService { hub }
    }
}

fn line(entry: LogEntry, skipped_before: u64) -> LogLine {
    LogLine {
        text: entry.text,
        received_at_ms: entry.received_at_ms,
        skipped_before,
    }
}

#[tonic::async_trait]
impl LogService for LogsService {
    type StreamLogsStream = Pin<Box<dyn Stream<Item = Result<LogLine, Status>> + Send>>;

    async fn stream_logs(
        &self,
        request: Request<StreamLogsRequest>,
    ) -> Result<Response<Self::StreamLogsStream>, Status> {
        let request = request.into_inner();
        self.hub.app(&request.app).await?;
        tracing::debug!(app = %request.app, follow = request.follow, "streaming app logs");
        let (kept, mut follower) = app_logs::global().subscribe(&request.app);
        let (sender, receiver) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        let follow = request.follow;
        tokio::spawn(async move {
            for entry in kept {
                if sender.send(Ok(line(entry, 0))).await.is_err() {
                    return;
                }
            }
            if !follow {
                return;
            }
            let mut skipped = 0;
            loop {
                tokio::select! {
                    received = follower.recv() => match received {
                        Ok(entry) => {
                            if sender.send(Ok(line(entry, skipped))).await.is_err() {
                                return;
                            }
                            skipped = 0;
                        }
                        Err(RecvError::Lagged(count)) => skipped += count,
                        Err(RecvError::Closed) => return,
                    },
                    () = sender.closed() => return,
                }
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
        Ok(Response::new(Box::pin(stream)))
    }
}
