//! ApprovalService: the stream of pending approval requests, decisions on them, and the stored
//! grants, served from the hub's [`Broker`](crate::flow::Broker).

use std::pin::Pin;
use std::sync::Arc;

use bulkhead_proto::v1::approval_event::Event as EventMessage;
use bulkhead_proto::v1::approval_service_server::ApprovalService;
use bulkhead_proto::v1::{
    ApprovalEvent, ApprovalRequest, ApprovalSettled, DecideRequest, DecideResponse, Decision, Grant as GrantMessage,
    ListGrantsRequest, ListGrantsResponse, RevokeGrantRequest, RevokeGrantResponse, WatchApprovalsRequest,
};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::error::HubError;
use crate::flow::approvals::{ApprovalError, Choice, Event, Request as PendingRequest};
use crate::flow::broker::BrokerError;
use crate::flow::grants::Grant;
use crate::hub::Hub;
use crate::service::principal;

#[derive(Clone)]
pub struct ApprovalsService {
    hub: Arc<Hub>,
}

impl ApprovalsService {
    pub fn new(hub: Arc<Hub>) -> ApprovalsService {
        ApprovalsService { hub }
    }
}

fn request_message(request: &PendingRequest) -> ApprovalRequest {
    ApprovalRequest {
        id: request.id.clone(),
        principal: request.principal.clone(),
        session: request.session.clone(),
        source_app: request.source.clone(),
        target_app: request.target.clone(),
        tool: request.tool.clone(),
        rule: request.rule.as_str().to_string(),
        reason: request.reason.clone(),
        arguments: request.arguments.clone(),
        fields: request.fields.clone(),
        destructive: request.destructive,
        requested_at_ms: request.requested_at_ms,
        expires_at_ms: request.expires_at_ms,
    }
}

fn event_message(event: Event) -> ApprovalEvent {
    let event = match event {
        Event::Requested(request) => EventMessage::Request(request_message(&request)),
        Event::Settled { id, outcome } => EventMessage::Settled(ApprovalSettled { id, outcome }),
    };
    ApprovalEvent { event: Some(event) }
}

fn grant_message(grant: Grant) -> GrantMessage {
    GrantMessage {
        id: grant.id,
        scope: grant.scope.as_str().to_string(),
        principal: grant.principal,
        session: grant.session,
        source_app: grant.source,
        target_app: grant.target,
        tool: grant.tool,
        approver: grant.approver,
        request: grant.request,
        created_at_ms: grant.created_at_ms,
    }
}

fn choice(decision: i32) -> Result<Choice, HubError> {
    match Decision::try_from(decision) {
        Ok(Decision::AllowOnce) => Ok(Choice::Once),
        Ok(Decision::AllowSession) => Ok(Choice::Session),
        Ok(Decision::AllowAlways) => Ok(Choice::Always),
        Ok(Decision::Deny) => Ok(Choice::Deny),
        Ok(Decision::Unspecified) | Err(_) => Err(BrokerError::from(ApprovalError::NoDecision).into()),
    }
}

#[tonic::async_trait]
impl ApprovalService for ApprovalsService {
    type WatchApprovalsStream = Pin<Box<dyn Stream<Item = Result<ApprovalEvent, Status>> + Send>>;

    async fn watch_approvals(
        &self,
        request: Request<WatchApprovalsRequest>,
    ) -> Result<Response<Self::WatchApprovalsStream>, Status> {
        let approver = principal(&request)?;
        let (pending, events) = self.hub.broker.approvals().watch(&approver);
        tracing::info!(approver = %approver, pending = pending.len(), "approver attached");
        let first = tokio_stream::iter(pending.into_iter().map(|request| Ok(event_message(Event::Requested(request)))));
        let later = tokio_stream::wrappers::ReceiverStream::new(events).map(|event| Ok(event_message(event)));
        Ok(Response::new(Box::pin(first.chain(later))))
    }

    async fn decide(&self, request: Request<DecideRequest>) -> Result<Response<DecideResponse>, Status> {
        let approver = principal(&request)?;
        let request = request.into_inner();
        let choice = choice(request.decision)?;
        // The decision runs in a task of its own, so that a client that goes away halfway cannot
        // leave a grant stored while the waiting call hears nothing.
        let hub = self.hub.clone();
        let settled = tokio::spawn(async move { hub.broker.settle(&approver, &request.id, choice).await });
        let grant = settled
            .await
            .map_err(|error| Status::internal(format!("the decision task failed: {error}")))?
            .map_err(HubError::from)?;
        Ok(Response::new(DecideResponse { grant: grant.map(grant_message) }))
    }

    async fn list_grants(&self, request: Request<ListGrantsRequest>) -> Result<Response<ListGrantsResponse>, Status> {
        let caller = principal(&request)?;
        let grants = self.hub.broker.grants(&caller).into_iter().map(grant_message).collect();
        Ok(Response::new(ListGrantsResponse { grants }))
    }

    async fn revoke_grant(&self, request: Request<RevokeGrantRequest>) -> Result<Response<RevokeGrantResponse>, Status> {
        let caller = principal(&request)?;
        let id = request.into_inner().id;
        let grant = self.hub.broker.revoke(&caller, &id).await.map_err(HubError::from)?;
        Ok(Response::new(RevokeGrantResponse { grant: Some(grant_message(grant)) }))
    }
}
