//! A query's flows of data between apps. The hub decides each one while the query watches: an
//! approval_needed event goes out before a live approver is asked, and a flow_decided event after
//! each decision. A denied step input is withheld from its step, which goes on without it.

use bulkhead_proto::v1::query_event::Event;
use bulkhead_proto::v1::{ApprovalNeeded, FlowDecided, QueryEvent};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{EventSender, QueryRun};
use crate::error::HubError;
use crate::flow::FlowNotice;
use crate::hub::{Carried, FlowOptions};
use crate::supervisor::CallOutcome;

impl QueryRun {
    /// Decides the flows of a payload that the hub moves into `target`, and returns the payload
    /// with any withheld fields emptied. With `withhold` unset, a denial fails.
    pub(super) async fn transfer(
        &self,
        step: &str,
        target: &str,
        label: &str,
        payload_json: &str,
        carried: &[Carried],
        withhold: bool,
    ) -> Result<String, HubError> {
        let witness = Witness::start(&self.events, step);
        let options = FlowOptions { carried, withhold, notices: Some(&witness.notices) };
        let outcome = self.hub.check_transfer(&self.caller, target, label, payload_json, options).await;
        witness.finish().await;
        Ok(outcome?.unwrap_or_else(|| payload_json.to_string()))
    }

    /// Calls a tool for a step. Data of other apps in `carried` or found by the guard is
    /// withheld from the call when its flow is denied.
    pub(super) async fn call(
        &self,
        step: &str,
        app: &str,
        tool: &str,
        arguments_json: String,
        carried: &[Carried],
    ) -> Result<CallOutcome, HubError> {
        let witness = Witness::start(&self.events, step);
        let options = FlowOptions { carried, withhold: true, notices: Some(&witness.notices) };
        let outcome = self.hub.call_tool_with(&self.caller, app, tool, arguments_json, options).await;
        witness.finish().await;
        outcome
    }
}

/// Turns the hub's flow notices for one call into query events while the call runs.
struct Witness {
    notices: mpsc::UnboundedSender<FlowNotice>,
    task: JoinHandle<()>,
}

impl Witness {
    fn start(events: &EventSender, step: &str) -> Witness {
        let (notices, mut heard) = mpsc::unbounded_channel();
        let events = events.clone();
        let step = step.to_string();
        let task = tokio::spawn(async move {
            while let Some(notice) = heard.recv().await {
                let event = notice_event(notice, &step);
                // A client that went away stops reading, and the query still finishes.
                let _ = events.send(Ok(QueryEvent { event: Some(event) })).await;
            }
        });
        Witness { notices, task }
    }

    /// Waits until every notice of the call has become an event.
    async fn finish(self) {
        drop(self.notices);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the task that reports a query's flows failed");
        }
    }
}

fn notice_event(notice: FlowNotice, step: &str) -> Event {
    match notice {
        FlowNotice::Pending(request) => Event::ApprovalNeeded(ApprovalNeeded {
            step_id: step.to_string(),
            source_app: request.source.clone(),
            target_app: request.target.clone(),
            tool: request.tool.clone(),
            arguments_json: request.arguments.clone(),
            request_id: request.id.clone(),
            fields: request.fields.clone(),
            reason: request.reason.clone(),
            expires_at_ms: request.expires_at_ms,
        }),
        FlowNotice::Decided(report) => Event::FlowDecided(FlowDecided {
            step_id: step.to_string(),
            source_app: report.source,
            target_app: report.target,
            tool: report.tool,
            arguments_json: report.arguments,
            fields: report.fields,
            allowed: report.allowed,
            by: report.by,
            reason: report.reason,
            withheld: report.withheld,
        }),
    }
}
